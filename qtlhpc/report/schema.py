"""Datasets of the ``report`` stage: where the figures and the index page were written."""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("report_file", "a file of the visual report (index.html first, then the figures)")
declare("report", "files", ("report_file",), "str", "",
        "path of each report file, relative to the report directory", labels_for="report_file")
declare("report", "directory", ("report_file",), "str", "",
        "the report directory (absolute path when written), repeated for each file")
