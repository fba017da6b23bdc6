import os

# Ranks and tests share two cores: one BLAS thread per process keeps timings sane.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
