"""The declaration of a stage and of a config section: each written once, in its method's room.

A :class:`StageSpec` says everything the framework needs to know of a stage: its driver, the config
sections whose values change its numbers (all of them go into its ``config_sha256``), the stages whose
results it reads, whether it is an array stage (and its units and merge stage), and its memory and
throughput model for ``qtlhpc plan``.  The CLI's choices, config validation, the config hash, SLURM
rendering, ``qtlhpc plan`` and docs/config.md all come from these declarations (see
:mod:`qtlhpc.stages.registry`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Tuple, Union

#: sections every stage may read without declaring them: they never change a stage's numbers
#: (output file, logging, progress, write mode); the run seed is hashed into every stage.
FRAMEWORK_SECTIONS = ("run",)


@dataclass(frozen=True)
class SectionSpec:
    """A config section ``[name]``: its declared keys (:class:`qtlhpc.config.Option`), owned by one room.

    ``optional``: the section is validated only when the config has it (``[input]``, ``[simulate]``).
    """

    name: str
    options: Mapping[str, Any]
    owner: str
    description: str = ""
    optional: bool = False


@dataclass(frozen=True)
class ArrayUnits:
    """The work units of an array stage: ``count(config)`` units with ids ``0 .. count-1``.

    Each unit's random stream is keyed by its id alone, so any split over SLURM array tasks and ranks
    gives the same numbers.  ``merge`` is the stage that gathers the task files.
    """

    unit: str                                   # what one unit is ("permutation", "chain", "start")
    count: Callable[[Any], int]                 # config -> number of units
    count_key: str                              # the config key that sets the count (for messages)
    merge: str                                  # the merge stage's name


@dataclass(frozen=True)
class PlanModel:
    """What ``qtlhpc plan`` needs of a stage: memory per rank and work, both from the problem sizes.

    ``memory(sizes, ranks) -> (bytes, formula)``; ``work(sizes) -> units``; ``rate``: units per second
    per rank, measured by ``measured_by``.
    """

    memory: Callable[[Any, int], Tuple[float, str]]
    work: Callable[[Any], float]
    unit: str
    rate: float
    measured_by: str
    splits: bool = True                         # does the work shrink with more ranks?


@dataclass(frozen=True)
class StageSpec:
    """One stage, declared once (see the module docstring).

    ``needs`` is a tuple of stage names, or a callable ``config -> tuple`` when the stages a run reads
    depend on its options (the Haley-Knott scans need no kinship).  ``writes`` is the results group
    (default: the stage's name; a merge stage writes its array stage's group).
    """

    name: str
    method: str
    driver: str                                  # "module:function", imported when the stage runs
    description: str
    reads: Tuple[str, ...] = ()                  # config sections besides its own
    needs: Union[Tuple[str, ...], Callable[[Any], Tuple[str, ...]]] = ()
    section: Optional[str] = None                # its own section (default: its name; "" for none)
    writes: Optional[str] = None
    array: Optional[ArrayUnits] = None
    merges: Optional[str] = None                 # a merge stage: the array stage whose task files it merges
    plan: Optional[PlanModel] = None
    extra_arguments: Tuple[str, ...] = field(default=())

    @property
    def own_section(self) -> str:
        return self.name if self.section is None else self.section

    @property
    def group(self) -> str:
        return self.writes or self.name

    @property
    def sections(self) -> Tuple[str, ...]:
        """Every config section this stage may read: its own and its declared ``reads``."""
        own = (self.own_section,) if self.own_section else ()
        return tuple(dict.fromkeys(own + tuple(self.reads)))

    def needed_stages(self, config) -> Tuple[str, ...]:
        return tuple(self.needs(config)) if callable(self.needs) else tuple(self.needs)

    def resolve(self) -> Callable:
        module_name, function_name = self.driver.split(":")
        return getattr(importlib.import_module(module_name), function_name)
