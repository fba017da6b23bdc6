"""Stage drivers: read inputs, validate, call kernels through the distributed wrappers, write results.

``STAGES`` maps a stage name to ``"module:function"``; drivers are imported only when run, so a stage
whose optional dependencies are missing does not stop the others.
"""

from __future__ import annotations

import importlib
import time

STAGES = {
    "genoprob": "qtlhpc.stages.genoprob:run_genoprob",
    "kinship": "qtlhpc.stages.kinship:run_kinship",
    "varcomp": "qtlhpc.stages.varcomp:run_varcomp",
    "scan1d": "qtlhpc.stages.scan1d:run_scan1d",
    "scan2d": "qtlhpc.stages.scan2d:run_scan2d",
    "permutations": "qtlhpc.stages.permutations:run_permutations",
    "merge-permutations": "qtlhpc.stages.permutations:run_merge_permutations",
    "report": "qtlhpc.stages.report:run_report",
}

#: named pipelines: `qtlhpc run pepis CONFIG` runs these stages in order
PIPELINES = {
    "pepis": ["genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations"],
}


def resolve(stage: str):
    module_name, function_name = STAGES[stage].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def run_stage(context, stage: str, **options) -> None:
    """Run one stage, or with ``stage == "all"`` every stage in ``run.stages`` in order."""
    from qtlhpc.errors import ConfigError

    if stage == "all":
        names = context.config.section("run")["stages"]
    else:
        names = PIPELINES.get(stage, [stage])
    for name in names:
        if name not in STAGES:
            raise ConfigError(f"stage {name!r} is not available in this version; stages: {', '.join(STAGES)}")
        started = time.time()
        context.log.info("stage %s: starting on %d rank(s)", name, context.size)
        resolve(name)(context, **options) if options else resolve(name)(context)
        context.log.info("stage %s: done in %.1f s", name, time.time() - started)
