"""Build the report page: read the results file, draw the figures, write index.html."""

from __future__ import annotations

from pathlib import Path

from qtlhpc.errors import InputError
from qtlhpc.report.collect import read_header
from qtlhpc.report.html import render_page
from qtlhpc.report.layout import bin_edges, binned_pair_maximum, genome_layout
from qtlhpc.report.sections import SECTION_BUILDERS
from qtlhpc.store import open_results

__all__ = ["write_report", "binned_pair_maximum", "bin_edges", "genome_layout"]


def section_builders(header):
    """The PEPIS sections when the file has a PEPIS stage (or no method stage at all), then, for each other
    method with a stage in the file, its room's sections (``qtlhpc/methods/<room>/report.py``:
    ``SECTION_BUILDERS_BY_METHOD[method]``, else ``SECTION_BUILDERS``)."""
    import importlib

    from qtlhpc.stages import registry

    present = {status.name for status in header.stages if status.status != "absent"}
    groups = registry.groups_by_method()
    builders = []
    if present & groups.get("pepis", set()) or not present & set().union(*groups.values()):
        builders += list(SECTION_BUILDERS)
    for method, room in registry.method_rooms().items():
        if method == "pepis" or not present & groups[method]:
            continue
        try:
            module = importlib.import_module(f"{room}.report")
        except ModuleNotFoundError as error:
            if error.name != f"{room}.report":
                raise
            continue
        by_method = getattr(module, "SECTION_BUILDERS_BY_METHOD", {})
        builders += list(by_method.get(method, getattr(module, "SECTION_BUILDERS", ())))
    return builders


def write_report(results_path, out_dir, *, top: int = 20) -> Path:
    """Write the report of ``results_path`` into ``out_dir`` (created if needed); returns ``out_dir/index.html``.

    ``top`` is the number of rows of the main-effect and epistatic-pair tables.  Stages that are absent
    or not complete are named in the page and not drawn.
    """
    if int(top) < 1:
        raise InputError(f"the number of table rows must be at least 1, got {top}")
    results_path = Path(results_path)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("the report directory given is an existing file; give a directory", file=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_results(results_path) as results:
        header = read_header(results)
        sections = [build(results, header, out_dir, int(top)) for build in section_builders(header)]
    index = out_dir / "index.html"
    index.write_text(render_page(header, sections), encoding="utf-8")
    return index
