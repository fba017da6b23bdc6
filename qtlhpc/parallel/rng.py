"""Random streams keyed by work unit, so that results do not depend on the number of ranks.

A stream is a function of ``(run_seed, stream name, unit id...)`` only: permutation 17 draws the same
numbers whether it runs on rank 0 of 1, rank 2 of 3 or in array task 5 of a SLURM job.
"""

from __future__ import annotations

import zlib

import numpy as np


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def unit_seed_sequence(run_seed: int, stream: str, *unit_ids: int) -> np.random.SeedSequence:
    """The seed sequence of one work unit: ``SeedSequence(run_seed, spawn_key=(crc32(stream), *unit_ids))``."""
    if int(run_seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {run_seed}")
    key = (_name_key(stream),) + tuple(int(u) for u in unit_ids)
    if any(u < 0 for u in key):
        raise ValueError(f"unit ids must be non-negative, got {unit_ids}")
    return np.random.SeedSequence(int(run_seed), spawn_key=key)


def unit_rng(run_seed: int, stream: str, *unit_ids: int) -> np.random.Generator:
    """A ``numpy.random.Generator`` (PCG64) for one work unit of one named stream."""
    return np.random.Generator(np.random.PCG64(unit_seed_sequence(run_seed, stream, *unit_ids)))
