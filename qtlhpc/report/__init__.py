"""The visual report of a results file: PNG figures and an index.html that links them.

``write_report(results_path, out_dir)`` draws what the file's complete stages hold (variance
components, 1D LOD profiles with permutation thresholds, 2D LOD heatmaps, top QTL and pair tables) and
says in the page which stages are missing or incomplete.  Modules:

* :mod:`~qtlhpc.report.layout`, :mod:`~qtlhpc.report.ranking`: pure array helpers (genome axis, binned
  pair maxima, table rows);
* :mod:`~qtlhpc.report.collect`: statuses and datasets read from the file;
* :mod:`~qtlhpc.report.figures`: the matplotlib figures (Agg canvas, no display);
* :mod:`~qtlhpc.report.sections`, :mod:`~qtlhpc.report.html`: sections and the page.

The page is built by :func:`qtlhpc.report.build.write_report` (imported on first use, so that the
registry can import this room's ``schema``, ``options`` and ``stages`` modules without the store).
"""

__all__ = ["write_report", "binned_pair_maximum", "bin_edges", "genome_layout"]


def __getattr__(name):
    if name in __all__:
        from qtlhpc.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'qtlhpc.report' has no attribute {name!r}")
