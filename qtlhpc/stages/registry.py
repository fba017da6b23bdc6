"""Every stage and config section, gathered from the rooms: the one list of stages is built here.

A room is a package with (any of) ``options.py`` (``SECTIONS``), ``schema.py`` (dataset declarations)
and ``stages.py`` (``STAGES``).  The shared rooms are listed in :data:`SHARED_ROOMS`; method rooms are
every sub-package of :mod:`qtlhpc.methods`, found by being there.  Adding a method therefore needs no
edit here.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Dict, List, Tuple

from qtlhpc.errors import ConfigError, did_you_mean
from qtlhpc.stages.spec import SectionSpec, StageSpec

#: rooms shared by every method (input readers, genetics, the report), before the method rooms
SHARED_ROOMS = ("qtlhpc.io", "qtlhpc.genetics", "qtlhpc.report")


@functools.lru_cache(maxsize=None)
def rooms() -> Tuple[str, ...]:
    import qtlhpc.methods

    methods = sorted(info.name for info in pkgutil.iter_modules(qtlhpc.methods.__path__) if info.ispkg)
    return SHARED_ROOMS + tuple(f"qtlhpc.methods.{name}" for name in methods)


def _room_module(room: str, name: str):
    try:
        return importlib.import_module(f"{room}.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"{room}.{name}":
            return None
        raise


def load_schemas() -> None:
    """Import every room's ``schema`` module (each declares its datasets at import)."""
    for room in rooms():
        _room_module(room, "schema")


@functools.lru_cache(maxsize=None)
def sections() -> Dict[str, SectionSpec]:
    """Every config section: the framework's ([run], [slurm]) and each room's, by name."""
    from qtlhpc.config import framework_sections

    found: Dict[str, SectionSpec] = {s.name: s for s in framework_sections()}
    for room in rooms():
        module = _room_module(room, "options")
        for section in getattr(module, "SECTIONS", ()):
            if section.name in found:
                raise ValueError(f"config section [{section.name}] is declared by {found[section.name].owner} "
                                 f"and by {section.owner}")
            found[section.name] = section
    return found


@functools.lru_cache(maxsize=None)
def stages() -> Dict[str, StageSpec]:
    """Every stage by name, in room order (shared rooms first), each room's in declaration order."""
    found: Dict[str, StageSpec] = {}
    for room in rooms():
        module = _room_module(room, "stages")
        for spec in getattr(module, "STAGES", ()):
            if spec.name in found:
                raise ValueError(f"stage {spec.name!r} is declared by methods {found[spec.name].method!r} "
                                 f"and {spec.method!r}")
            found[spec.name] = spec
    _check(found)
    return found


def _check(found: Dict[str, StageSpec]) -> None:
    known_sections = sections()
    for spec in found.values():
        for name in spec.sections:
            if name not in known_sections:
                raise ValueError(f"stage {spec.name!r} reads section [{name}], which no room declares")
        if not callable(spec.needs):
            for name in spec.needs:
                if name not in found:
                    raise ValueError(f"stage {spec.name!r} needs stage {name!r}, which is not declared")
        if spec.array is not None and spec.array.merge not in found:
            raise ValueError(f"array stage {spec.name!r} names merge stage {spec.array.merge!r}, not declared")


@functools.lru_cache(maxsize=None)
def method_rooms() -> Dict[str, str]:
    """``{method: room package}`` of every method (not the shared stages): where its report and tables live."""
    found: Dict[str, str] = {}
    for room in rooms():
        for spec in getattr(_room_module(room, "stages"), "STAGES", ()):
            if spec.method != "shared":
                found.setdefault(spec.method, room)
    return found


def groups_by_method() -> Dict[str, set]:
    """``{method: the results groups its own stages write}`` (shared stages excluded)."""
    found: Dict[str, set] = {}
    for spec in stages().values():
        if spec.method != "shared":
            found.setdefault(spec.method, set()).add(spec.group)
    return found


def get(name: str) -> StageSpec:
    """The stage ``name``; a :class:`ConfigError` naming the nearest stage otherwise."""
    found = stages()
    if name not in found:
        raise ConfigError(f"unknown stage {name!r}{did_you_mean(name, list(found) + list(pipelines()))} "
                          f"(stages: {', '.join(found)}; pipelines: {', '.join(pipelines())})")
    return found[name]


def methods() -> List[str]:
    return list(dict.fromkeys(spec.method for spec in stages().values() if not spec.method.startswith("shared")))


def pipeline(method: str, config=None) -> List[str]:
    """The stages ``qtlhpc run METHOD`` runs: the method's stages (not its merge stages), preceded by the
    shared stages they need, in dependency order."""
    found = stages()
    own = [s.name for s in found.values() if s.method == method and s.merges is None]
    ordered: List[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        spec = found[name]
        needs = spec.needed_stages(config) if config is not None or not callable(spec.needs) else ()
        for upstream in needs:
            if found[upstream].merges is None:
                visit(upstream)
        ordered.append(name)

    for name in own:
        visit(name)
    return ordered


def pipelines() -> Dict[str, List[str]]:
    """``{method: pipeline(method)}`` for every method room."""
    return {method: pipeline(method) for method in methods()}


def stage_names() -> Tuple[str, ...]:
    return tuple(stages())


def dependents(name: str, config=None) -> List[str]:
    """Stages that read ``name``'s results, directly or through others."""
    found = stages()
    out: List[str] = []
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for spec in found.values():
            needs = spec.needed_stages(config) if (config is not None or not callable(spec.needs)) else ()
            if current in needs and spec.name not in out:
                out.append(spec.name)
                frontier.append(spec.name)
    return out
