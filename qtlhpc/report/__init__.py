"""The visual report of a results file: PNG figures and an index.html that links them.

``write_report(results_path, out_dir)`` draws what the file's complete stages hold (variance
components, 1D LOD profiles with permutation thresholds, 2D LOD heatmaps, top QTL and pair tables) and
says in the page which stages are missing or incomplete.  Modules:

* :mod:`~qtlhpc.report.layout`, :mod:`~qtlhpc.report.ranking`: pure array helpers (genome axis, binned
  pair maxima, table rows);
* :mod:`~qtlhpc.report.collect`: statuses and datasets read from the file;
* :mod:`~qtlhpc.report.figures`: the matplotlib figures (Agg canvas, no display);
* :mod:`~qtlhpc.report.sections`, :mod:`~qtlhpc.report.html`: sections and the page.
"""

from __future__ import annotations

from pathlib import Path

from qtlhpc.errors import InputError
from qtlhpc.report.collect import read_header
from qtlhpc.report.html import render_page
from qtlhpc.report.layout import bin_edges, binned_pair_maximum, genome_layout
from qtlhpc.report.sections import SECTION_BUILDERS
from qtlhpc.store import open_results

__all__ = ["write_report", "binned_pair_maximum", "bin_edges", "genome_layout"]


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
        sections = [build(results, header, out_dir, int(top)) for build in SECTION_BUILDERS]
    index = out_dir / "index.html"
    index.write_text(render_page(header, sections), encoding="utf-8")
    return index
