"""Claims from a SharedCounter on every rank (run under mpirun by tests/test_parallel.py).

usage: shared_counter.py N_UNITS
Each rank claims indices (with a little work between claims) until they run out; rank 0 prints
"CLAIMED <all indices, sorted>" and "RANKS <number of ranks that claimed at least one>".
"""

import sys
import time

from qtlhpc.parallel import world
from qtlhpc.parallel.counter import SharedCounter


def main(n_units):
    comm = world()
    mine = []
    with SharedCounter(comm) as counter:
        while True:
            index = counter.claim()
            if index >= n_units:
                break
            mine.append(index)
            time.sleep(0.002 * (1 + comm.Get_rank()))  # unequal ranks
    everything = comm.gather(mine, root=0)
    if comm.Get_rank() == 0:
        print("CLAIMED", *sorted(i for part in everything for i in part), flush=True)
        print("RANKS", sum(1 for part in everything if part), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
