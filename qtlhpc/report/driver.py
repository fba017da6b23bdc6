"""Stage ``report``: PNG figures and an index.html from the run's results (rank 0 draws)."""

from __future__ import annotations

import pathlib

import numpy as np

STAGE = "report"


def run_report(context) -> None:
    options = context.config.section(STAGE)
    directory = context.config.path(options["directory"]).resolve()
    index = None
    if context.rank == 0:
        from qtlhpc.report import write_report

        index = write_report(context.output, directory, top=options["top"])
    index = context.comm.bcast(index, root=0) if context.size > 1 else index
    files = sorted(p.relative_to(directory).as_posix() for p in pathlib.Path(directory).glob("*") if p.is_file())
    files = ["index.html"] + [f for f in files if f != "index.html"]
    with context.open_results() as results:
        config = context.config.stage_config(context.spec)
        config["stages"] = {s.name: s.attributes.get("finished", "") for s in results.describe() if s.name != STAGE}
        lineage = {s.name: s.attributes.get("result_id", "") for s in results.describe()
                   if s.name != STAGE and s.status == "complete"}
        stage = results.begin_stage(STAGE, config, command_line=context.command_line, lineage=lineage)
        stage.write("files", np.array(files, dtype=str))
        stage.write("directory", np.array([str(directory)] * len(files), dtype=str))
        stage.finish()
    context.log.info("report: %s", index)
