"""The stage framework: declarations (:mod:`~qtlhpc.stages.spec`), the one registry of stages
(:mod:`~qtlhpc.stages.registry`), the run context and checkpointed writes
(:mod:`~qtlhpc.stages.runtime`) and array stages (:mod:`~qtlhpc.stages.sharded`).

No method code lives here: each method's stages are declared in its room
(``qtlhpc/methods/<method>/stages.py``) and found by the registry.
"""

from __future__ import annotations

import contextlib
import time
from typing import List

from qtlhpc.errors import ConfigError
from qtlhpc.stages import registry


def stage_sequence(context, stage: str) -> List[str]:
    """The stages ``qtlhpc run STAGE`` runs: one stage, a method's pipeline, or ``run.stages`` for ``all``."""
    names = context.config.section("run")["stages"] if stage == "all" else [stage]
    if not names:
        raise ConfigError(f"{context.config.source}: [run] stages is empty, so `qtlhpc run all` has nothing to run; "
                          f"list the stages or pipelines to run, e.g. stages = [\"pepis\", \"report\"], or name "
                          f"one on the command line (`qtlhpc run STAGE CONFIG`)")
    pipelines = registry.pipelines()
    out: List[str] = []
    for name in names:
        if name in pipelines:
            out += registry.pipeline(name, context.config)
        else:
            registry.get(name)
            out.append(name)
    return list(dict.fromkeys(out))


def run_stage(context, stage: str, **options) -> None:
    """Run one stage, a method's pipeline (``pepis``), or with ``stage == "all"`` every stage in
    ``run.stages`` in order.  Each stage sees only the config sections its declaration names.

    The run holds the results file's lock (``qtlhpc.store.lock``) across all its stages, so a second run
    on the same file refuses at once; an array task writes its own file and locks that one instead."""
    from qtlhpc.store import lock

    names = stage_sequence(context, stage)
    held = lock.holding(context.output, context.comm, context.command_line) if not options.get("unit_output") \
        else contextlib.nullcontext()
    with held:
        for name in names:
            spec = registry.get(name)
            started = time.time()
            context.log.info("stage %s: starting on %d rank(s)", name, context.size)
            stage_context = context.for_stage(spec)
            driver = spec.resolve()
            driver(stage_context, **options) if options else driver(stage_context)
            context.log.info("stage %s: done in %.1f s", name, time.time() - started)
