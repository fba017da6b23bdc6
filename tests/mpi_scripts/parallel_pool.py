"""run_pool under mpirun (tests/test_parallel.py).

usage: parallel_pool.py N_UNITS OUT.json

Every unit draws from unit_rng(seed, "pool-test", unit) and records which rank ran it; some units are
slower than others so that the pool hands them out unevenly.  Rank 0 writes
{"results": {unit: [values...]}, "runs": {unit: count}, "ranks": {unit: rank}} to OUT.json; rank 1 checks
that its gathered results equal rank 0's.
"""

import json
import sys
import time

from qtlhpc.parallel import run_pool, unit_rng, world

SEED = 777


def work(unit_id):
    rng = unit_rng(SEED, "pool-test", unit_id)
    if unit_id % 5 == 0:
        time.sleep(0.02)
    return rng.random(3).tolist()


def main(n_units, out):
    comm = world()
    rank = comm.Get_rank()
    ran_here = []

    def on_result(unit_id, result):
        ran_here.append(unit_id)

    results = run_pool(work, range(n_units), comm, on_result=on_result)
    runs_by_rank = comm.gather(ran_here)
    everyone = comm.allgather(results)
    assert all(other == everyone[0] for other in everyone), "ranks returned different results"
    own = run_pool(work, range(n_units), comm, gather=False)
    own_units = comm.gather(sorted(own))
    if rank == 0:
        counts, owner = {}, {}
        for worker, units in enumerate(runs_by_rank):
            for unit in units:
                counts[unit] = counts.get(unit, 0) + 1
                owner[unit] = worker
        flat_own = sorted(u for units in own_units for u in units)
        with open(out, "w") as handle:
            json.dump({"results": {str(k): v for k, v in results.items()}, "runs": counts, "ranks": owner,
                       "ungathered_units": flat_own, "size": comm.Get_size()}, handle)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
