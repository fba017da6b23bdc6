"""The work scheduler under mpirun (tests/test_parallel.py).

usage: schedule_units.py N_UNITS MODE OUT.json      (MODE: static or claimed)

Every unit draws from unit_rng(seed, "schedule-test", unit) and records which rank ran it; some units are
slower than others so that a claimed schedule hands them out unevenly.  Rank 0 writes
{"results": {unit: [values...]}, "runs": {unit: count}, "ranks": {unit: rank}, "size": n} to OUT.json;
every rank checks that it holds the same gathered results.
"""

import json
import sys
import time

from qtlhpc.parallel import schedule, unit_rng, world

SEED = 777


def work(unit_id):
    rng = unit_rng(SEED, "schedule-test", unit_id)
    if unit_id % 5 == 0:
        time.sleep(0.02)
    return rng.random(3).tolist()


def main(n_units, mode, out):
    comm = world()
    ran_here = []

    def compute(unit_id):
        ran_here.append(unit_id)
        return work(unit_id)

    results = schedule.map_units(compute, range(n_units), comm, claimed=mode == "claimed")
    everyone = comm.allgather(results)
    assert all(other == everyone[0] for other in everyone), "ranks returned different results"
    runs_by_rank = comm.gather(ran_here)
    if comm.Get_rank() == 0:
        counts, owner = {}, {}
        for worker, units in enumerate(runs_by_rank):
            for unit in units:
                counts[unit] = counts.get(unit, 0) + 1
                owner[unit] = worker
        with open(out, "w") as handle:
            json.dump({"results": {str(k): v for k, v in results.items()}, "runs": counts, "ranks": owner,
                       "size": comm.Get_size()}, handle)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
