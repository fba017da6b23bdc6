"""The ``report`` stage: figures and a page from whatever complete stages the results file holds."""

from qtlhpc.stages.spec import StageSpec

STAGES = (
    StageSpec("report", "shared", "qtlhpc.report.driver:run_report",
              "PNG figures and an index.html from the run's results"),
)
