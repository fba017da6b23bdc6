"""Config sections of GaneSh co-clustering: ``[cocluster]`` (the Gibbs runs, F and its diagnostics) and
``[cocluster_fuzzy]`` (fuzzy clusters from successive largest eigenvectors).  Defaults: spec B2.6."""

from __future__ import annotations

from dataclasses import dataclass

from qtlhpc.config import Option
from qtlhpc.errors import ConfigError
from qtlhpc.stages.spec import SectionSpec


@dataclass(frozen=True)
class RunsOption(Option):
    """An integer ``>= minimum`` or the text ``"auto"``."""

    def check(self, where, value):
        if value == "auto":
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r} is a {type(value).__name__}; expected an integer or \"auto\" "
                              f"({self.description})")
        if value < self.minimum:
            raise ConfigError(f"{where} = {value!r} is out of range; expected {self.range_text()} "
                              f"({self.description})")
        return value

    def range_text(self) -> str:
        return f">= {int(self.minimum)} or \"auto\""


COCLUSTER_OPTIONS = {
    "runs": RunsOption((int, str), 10, "independent Gibbs runs averaged into F ([J]: 10), the work units; \"auto\": "
                                       "add runs (auto_batch at a time) until rho between the two halves reaches "
                                       "auto_rho, at most max_runs (not in SLURM arrays)", minimum=1),
    "iterations": Option(int, 100, "iterations per run (one = G gene moves + K x C condition moves)", minimum=1),
    "burn_in": Option(int, 50, "iterations discarded before samples are kept", minimum=0),
    "thin": Option(int, 1, "keep every thin-th iteration after the burn-in", minimum=1),
    "mode": Option(str, "two-way", "two-way (GaneSh: conditions clustered inside each gene cluster) or one-way "
                                   "(Qin 2006: conditions independent)", ("two-way", "one-way")),
    "mu0": Option(float, 0.0, "normal-gamma prior mean of mu", minimum=-1e6, maximum=1e6),
    "lambda0": Option(float, 0.1, "normal-gamma prior pseudo-count of mu", minimum=0.0, exclusive_minimum=True),
    "alpha0": Option(float, 0.1, "gamma prior shape of the precision", minimum=0.0, exclusive_minimum=True),
    "beta0": Option(float, 0.1, "gamma prior rate of the precision", minimum=0.0, exclusive_minimum=True),
    "initial_clusters": Option(int, 0, "gene clusters of the random start (0: floor(sqrt(G)))", minimum=0),
    "initial_condition_clusters": Option(int, 0, "condition clusters per gene cluster at the start "
                                                 "(0: floor(sqrt(C)))", minimum=0),
    "new_cluster_log_bias": Option(float, 0.0, "added to the log weight of a new gene cluster (0 in the paper; "
                                               "Lemon-Tree uses 1)", minimum=-100.0, maximum=100.0),
    "max_runs": Option(int, 50, "runs = \"auto\": the most runs", minimum=2),
    "auto_rho": Option(float, 0.85, "runs = \"auto\": stop once rho (eq. 4) between the averages of the two halves "
                                    "of the runs reaches this", minimum=0.0, maximum=1.0, exclusive_minimum=True),
    "auto_batch": Option(int, 2, "runs = \"auto\": runs added per round (even)", minimum=2),
    "row_chunk": Option(int, 256, "rows of F built densely at a time (memory: row_chunk x G x 8 bytes)",
                        minimum=1),
}

FUZZY_OPTIONS = {
    "max_clusters": Option(int, 500, "the most fuzzy clusters (the cap; [J] extracted 500)", minimum=1),
    "eps_zero": Option(float, 1e-12, "criterion 1: stop when every entry of the deflated F is at most this",
                       minimum=0.0),
    "eps_degenerate": Option(float, 1e-8, "criterion 2: stop when lambda1 - lambda2 <= eps_degenerate lambda1",
                             minimum=0.0, maximum=1.0),
    "eps_negative": Option(float, 1e-8, "criterion 2: stop when min v < -eps_negative max v", minimum=0.0,
                           maximum=1.0),
    "on_degenerate": Option(str, "stop", "a largest eigenvalue that is not simple: stop ([J]'s criterion 2) or "
                                         "component (continue in the connected component of the lowest-index "
                                         "gene left; beyond the paper)", ("stop", "component")),
    "threshold": Option(float, 1e-6, "memberships p_ik at or below this are not stored", minimum=0.0,
                        maximum=1.0, exclusive_maximum=True),
    "backend": Option(str, "auto", "eigensolver: slepc (Krylov-Schur on the distributed F), scipy, or auto",
                      ("auto", "slepc", "scipy")),
    "tol": Option(float, 1e-10, "eigensolver relative tolerance", minimum=0.0, maximum=1.0, exclusive_minimum=True),
}

SECTIONS = (
    SectionSpec("cocluster", COCLUSTER_OPTIONS, "cocluster",
                "GaneSh co-clustering (Joshi et al. 2008): Gibbs runs, the co-clustering matrix F, rho, entropy"),
    SectionSpec("cocluster_fuzzy", FUZZY_OPTIONS, "cocluster",
                "fuzzy clusters from successive largest eigenvectors of F ([J] section 2.3)"),
)
