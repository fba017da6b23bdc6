"""What the report reads from a results file: stage statuses with provenance, and complete stages' datasets.

Only complete stages are read (through :meth:`qtlhpc.store.ResultsFile.read`, which refuses the others);
optional datasets (effects, top pairs...) come back as ``None`` when the stage did not write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import h5py
import numpy as np

from qtlhpc.store import ResultsFile

# Stages shown in the header, in pipeline order; others found in the file follow.
def pipeline_stages():
    """Result groups in the registry's order (genoprob first, then each method's stages)."""
    from qtlhpc.stages import registry

    return tuple(dict.fromkeys(spec.group for spec in registry.stages().values() if spec.name != "report"))
ABSENT = "absent"
COMPLETE = "complete"


@dataclass
class StageStatus:
    """One stage's status (``complete``, ``running``, or ``absent``) and provenance attributes."""

    name: str
    status: str
    started: str = ""
    finished: str = ""
    n_ranks: Optional[int] = None
    progress: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # checkpoint key -> (done, total)

    @property
    def is_complete(self) -> bool:
        return self.status == COMPLETE

    def explain(self) -> str:
        """A sentence for a stage that cannot be shown, e.g. ``scan2d is incomplete (status running; ...)``."""
        if self.status == ABSENT:
            return f"{self.name} is missing: the file has no {self.name} stage (run `qtlhpc {self.name}`)."
        blocks = "; ".join(f"{key}: {done} of {total} blocks done" for key, (done, total) in self.progress.items())
        return (f"{self.name} is incomplete (status {self.status}{'; ' + blocks if blocks else ''}): "
                f"its results are not shown. Rerun the same command to resume it.")


@dataclass
class FileHeader:
    file_name: str
    qtlhpc_version: str
    created: str
    stages: List[StageStatus]

    def stage(self, name: str) -> StageStatus:
        for status in self.stages:
            if status.name == name:
                return status
        return StageStatus(name, ABSENT)


@dataclass
class Loci:
    """Loci of a scan: ``names``, ``chromosomes``, ``positions_cM``, each (n_loci,)."""

    names: np.ndarray
    chromosomes: np.ndarray
    positions_cM: np.ndarray

    def __len__(self) -> int:
        return int(self.names.size)


def _expected_groups(found) -> set:
    """Result groups of the pipelines of the methods that have a stage in the file (PEPIS's when none has),
    shared stages they need included: the page names the missing ones of those."""
    from qtlhpc.stages import registry

    methods = [m for m, groups in registry.groups_by_method().items() if groups & set(found)] or ["pepis"]
    return {registry.get(name).group for method in methods for name in registry.pipeline(method)}


def read_header(results: ResultsFile) -> FileHeader:
    """File name, version, creation time and the status of every stage (pipeline stages first)."""
    with h5py.File(results.path, "r") as h5:
        version = _text(h5.attrs.get("qtlhpc_version", "unknown"))
        created = _text(h5.attrs.get("created", ""))
    found = {}
    for info in results.describe():
        attributes = info.attributes
        n_ranks = attributes.get("n_ranks")
        found[info.name] = StageStatus(
            info.name, info.status or "unknown", _text(attributes.get("started", "")),
            _text(attributes.get("finished", "")), None if n_ranks is None else int(n_ranks), dict(info.checkpoints))
    ordered = [name for name in pipeline_stages() if name in found or name in _expected_groups(found)]
    names = list(ordered) + [name for name in found if name not in ordered]
    stages = [found.get(name, StageStatus(name, ABSENT)) for name in names]
    return FileHeader(Path(results.path).name, version, created, stages)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def present_datasets(results: ResultsFile, stage: str) -> set:
    """Names of the datasets that ``stage`` holds in the file."""
    for info in results.describe():
        if info.name == stage:
            return {d.path.split("/", 1)[1] for d in info.datasets}
    return set()


def read_optional(results: ResultsFile, stage: str, name: str, present: set, selection=()):
    """``stage/name`` (or a selection of it) when the stage wrote it, else ``None``."""
    if name not in present:
        return None
    return results.read(f"{stage}/{name}", selection)


def read_loci(results: ResultsFile, stage: str) -> Loci:
    return Loci(results.read(f"{stage}/locus_names"), results.read(f"{stage}/locus_chromosomes"),
                results.read(f"{stage}/locus_positions_cM").astype(float))


def thresholds_for(results: ResultsFile, header: FileHeader, trait_names, which: str):
    """``(alphas (n_alpha,), thresholds (n_alpha, n_trait))`` aligned on ``trait_names`` (NaN where the
    permutations have no such trait), or ``None`` without a complete permutations stage.

    ``which`` is ``"1d"`` or ``"2d"``.
    """
    if not header.stage("permutations").is_complete:
        return None
    present = present_datasets(results, "permutations")
    name = f"threshold_{which}"
    if not {"alphas", "trait_names", name} <= present:
        return None
    alphas = results.read("permutations/alphas")
    stored = results.read(f"permutations/{name}")
    permuted_traits = {str(t): i for i, t in enumerate(results.read("permutations/trait_names"))}
    aligned = np.full((alphas.size, len(trait_names)), np.nan)
    for j, trait in enumerate(trait_names):
        if str(trait) in permuted_traits:
            aligned[:, j] = stored[:, permuted_traits[str(trait)]]
    return alphas, aligned
