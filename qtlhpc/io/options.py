"""The ``[input]`` section (declared in :data:`qtlhpc.io.loader.INPUT_OPTIONS`)."""

from qtlhpc.config import as_option
from qtlhpc.io.loader import INPUT_OPTIONS
from qtlhpc.stages.spec import SectionSpec

SECTIONS = (
    SectionSpec("input", {key: as_option(value) for key, value in INPUT_OPTIONS.items()}, "qtlhpc.io",
                "the input files of the cross", optional=True),
)
