"""The ``[report]`` section."""

from qtlhpc.config import Option
from qtlhpc.stages.spec import SectionSpec

REPORT_OPTIONS = {
    "directory": Option(str, "report", "report directory (relative to the config file)"),
    "top": Option(int, 20, "rows in the tables of top QTL and pairs", minimum=1),
}

SECTIONS = (SectionSpec("report", REPORT_OPTIONS, "qtlhpc.report", "the visual report"),)
