"""``qtlhpc ARGS`` with the store's free-space check switched off (run under mpirun by tests/test_faults_store.py).

usage: cli_without_space_check.py QTLHPC-ARGS...

The store checks the free space before it allocates (qtlhpc.store.space); this script makes the check see
plenty, so that a full file system is met where HDF5 writes: the path a check cannot cover (another
process filling the disk between the check and the write).  Whatever happens, the job must end, with one
message, and leave the finished stages readable.
"""

import sys

from qtlhpc import cli
from qtlhpc.store import space

space.free_bytes = lambda path: 1 << 50

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
