"""Inputs every block-mixture stage shares: the expression matrix (stage ``expression``) aligned to the genotype
probabilities (stage ``genoprob``), the min_sd gene filter and the EM settings (the array stages' task files are
merged by :func:`qtlhpc.stages.sharded.merge_task_files`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtlhpc.errors import ConfigError, InputError
from qtlhpc.methods.blockmix.fitting import EMSettings
from qtlhpc.parallel.comm import on_root

MODEL = "blockmix"


@dataclass
class Inputs:
    """``Y (n, G)`` (rows = individuals in genoprob order), ``YT`` its C-contiguous transpose, ``gene_index (G,)``
    rows of expression/values, ``probs (n, n_positions, Q)``, and the position table."""

    Y: np.ndarray
    YT: np.ndarray
    gene_index: np.ndarray
    probs: np.ndarray
    position_names: np.ndarray
    chromosomes: np.ndarray
    positions_cM: np.ndarray
    states: np.ndarray

    @property
    def n_genotypes(self) -> int:
        return int(self.probs.shape[2])


def settings(context, tol_key: str = "tol", section: str = MODEL) -> EMSettings:
    model = context.config.section(MODEL)
    own = context.config.section(section)
    return EMSettings(variance=model["variance"], parts=model["parts"], tol=own[tol_key], max_iter=own["max_iter"])


def gene_filter(values: np.ndarray, min_sd: float) -> np.ndarray:
    """Indices of the genes (rows of ``values (G, n)``) whose sample SD (n - 1) is at least ``min_sd``."""
    if min_sd <= 0:
        return np.arange(values.shape[0])
    return np.flatnonzero(values.std(axis=1, ddof=1) >= min_sd)


def load_inputs(context, results) -> Inputs:
    """The aligned inputs, read on rank 0 and broadcast (every rank holds all of Y: 8 n G bytes)."""
    model = context.config.section(MODEL)

    def read():
        for stage in ("expression", "genoprob"):
            if results.stage_status(stage) != "complete":
                raise ConfigError(f"{results.path}: stage {stage!r} is missing or incomplete; run `qtlhpc run "
                                  f"{stage} CONFIG` first (the blockmix pipeline runs it)")
        values = results.read("expression/values")
        samples = results.read("expression/sample_ids").astype(str)
        individuals = results.read("genoprob/individual_ids").astype(str)
        probs = results.read("genoprob/probs")
        column = {name: k for k, name in enumerate(samples.tolist())}
        absent = [name for name in individuals.tolist() if name not in column]
        if absent:
            keep = np.array([name in column for name in individuals.tolist()])
            individuals, probs = individuals[keep], probs[keep]
        if len(individuals) < 2:
            raise InputError(f"only {len(individuals)} genotyped individuals have expression values: the "
                             "expression samples must be individuals of the [input] cross")
        values = values[:, [column[name] for name in individuals.tolist()]]
        if not np.all(np.isfinite(values)):
            rows, cols = np.nonzero(~np.isfinite(values))
            gene = results.read("expression/gene_ids").astype(str)[rows[0]]
            raise InputError(f"expression value missing or not finite for gene {gene!r} and individual "
                             f"{individuals[cols[0]]!r} ({rows.size} such values): the block mixture needs a "
                             "complete matrix; impute those values or drop those genes from the expression file")
        genes = gene_filter(values, model["min_sd"])
        if genes.size < 2:
            raise ConfigError(f"[blockmix] min_sd = {model['min_sd']} keeps {genes.size} genes; lower it")
        Y = np.ascontiguousarray(values[genes].T, dtype=np.float64)
        return Inputs(Y, np.ascontiguousarray(Y.T), genes, np.ascontiguousarray(probs, dtype=np.float64),
                      results.read("genoprob/position_names").astype(str),
                      results.read("genoprob/position_chromosomes").astype(str),
                      results.read("genoprob/positions_cM"), results.read("genoprob/genotype_states").astype(str))

    inputs = on_root(context.comm, read)
    context.log.info("blockmix: %d individuals x %d genes, %d positions, %d genotypes", inputs.Y.shape[0],
                     inputs.Y.shape[1], inputs.probs.shape[1], inputs.n_genotypes)
    return inputs


