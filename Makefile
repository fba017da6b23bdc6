# qtlhpc: set-up, demo and tests.  `make demo` and `make test` install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PYTHON      := $(VENV)/bin/python
QTLHPC      := $(VENV)/bin/qtlhpc
STAMP       := $(VENV)/.qtlhpc-setup
TEST_STAMP  := $(VENV)/.qtlhpc-test-setup
NP          ?= 2
DEMO_DIR    ?= demo-output
PYTEST_ARGS ?=

# Debian 12's coherent MPI / parallel-HDF5 / PETSc / SLEPc stack (see docs/install.md).
STACK_PACKAGES := python3-venv python3-numpy python3-scipy python3-mpi4py python3-h5py-mpi \
                  python3-petsc4py-real python3-slepc4py-real openmpi-bin python3-cyvcf2 python3-pysam tabix \
                  python3-networkx
# A real single-node SLURM for the cluster tests, and R/qtl for the comparisons with it.
TEST_PACKAGES  := slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge libpmix-dev r-cran-qtl \
                  python3-setuptools python3-wheel r-bioc-qvalue fastqtl fastqtl-doc qtltools qtltools-example \
                  r-cran-lavaan r-cran-systemfit python3-sklearn

export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
MPIRUN := mpirun --oversubscribe

.PHONY: help setup setup-test demo test test-fast test-paper bench info clean

help:
	@echo "make demo   - install what is missing, then run the demo under mpirun -n $(NP)"
	@echo "make test   - install what is missing, then run the whole test suite"
	@echo "make setup  - only install (Debian packages, $(VENV), qtlhpc in editable mode)"
	@echo "make bench  - run the benchmarks in bench/"
	@echo "make info   - MPI, parallel HDF5, PETSc/SLEPc and the backends, under mpirun -n $(NP)"

setup: $(STAMP)

$(STAMP): pyproject.toml configs/pip-constraints.txt Makefile
	@bash configs/setup/install-debian.sh "$(VENV)" $(STACK_PACKAGES)
	@touch $@

setup-test: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	@bash configs/setup/install-debian.sh --packages-only "$(VENV)" $(TEST_PACKAGES)
	@touch $@

demo: setup
	@bash configs/setup/demo.sh "$(VENV)" "$(DEMO_DIR)" "$(NP)"

test: setup-test
	@$(PYTHON) -m pytest $(PYTEST_ARGS)

test-fast: setup
	@$(PYTHON) -m pytest -m "not slurm and not slow and not paper" $(PYTEST_ARGS)

# Reproductions of the papers' simulation studies (many replicates): not part of `make test` or CI.
test-paper: setup-test
	@$(PYTHON) -m pytest -m paper $(PYTEST_ARGS)

bench: setup
	@$(PYTHON) bench/run_all.py

info: setup
	@$(MPIRUN) -n $(NP) $(PYTHON) -m mpi4py -m qtlhpc info

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
