"""The report's PNG figures, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

Each function takes clean arrays and writes one PNG; the data come from :mod:`qtlhpc.report.collect`
and :mod:`qtlhpc.report.layout`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from qtlhpc.report.layout import GenomeLayout

DPI = 110
CHROMOSOME_COLOURS = ("#1f4e99", "#6fa8dc")  # alternating dark / light blue
BAND_COLOUR = "#f0f0f0"
THRESHOLD_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, facecolor="white")
    return Path(path)


def _thin_labels(names: Sequence[str], centres: np.ndarray, widths: np.ndarray, min_fraction: float):
    """Chromosome names for ticks, blanking those whose run is too narrow to hold a label."""
    total = float(np.sum(widths)) or 1.0
    return [name if width / total >= min_fraction or len(names) <= 25 else ""
            for name, width in zip(names, widths)]


def plot_scan1d_profile(path: Path, trait_name: str, layout: GenomeLayout, lod: np.ndarray,
                        thresholds: Sequence[Tuple[float, float]] = ()) -> Path:
    """LOD (n_loci,) against cumulative map position, chromosomes in alternating shades.

    ``thresholds`` are ``(alpha, LOD)`` genome-wide permutation thresholds, drawn as horizontal lines.
    """
    lod = np.asarray(lod, dtype=float)
    assert lod.shape == layout.cumulative_cM.shape, "one LOD per locus"
    figure = _new_figure(10, 4)
    axes = figure.add_subplot()
    for run, (start, stop) in enumerate(zip(layout.starts, layout.stops)):
        left, right = layout.run_left_cM[run], layout.run_right_cM[run]
        if run % 2 == 1:
            axes.axvspan(left, right if right > left else left + 1e-9, color=BAND_COLOUR, zorder=0, lw=0)
        colour = CHROMOSOME_COLOURS[run % 2]
        x, y = layout.cumulative_cM[start:stop], lod[start:stop]
        axes.plot(x, y, color=colour, lw=1.3, marker="o" if stop - start == 1 else None, ms=3, zorder=2)
    for index, (alpha, value) in enumerate(thresholds):
        if np.isfinite(value):
            axes.axhline(value, color="#c0392b", lw=1.1, ls=THRESHOLD_STYLES[index % len(THRESHOLD_STYLES)],
                         label=f"{100 * alpha:g}% genome-wide threshold ({value:.2f})", zorder=3)
    axes.set_xticks(layout.midpoints_cM)
    widths = layout.run_right_cM - layout.run_left_cM
    axes.set_xticklabels(_thin_labels(layout.names, layout.midpoints_cM, widths, 0.015))
    axes.tick_params(axis="x", length=0)
    span = layout.run_right_cM[-1] - layout.run_left_cM[0] if len(layout.names) else 1.0
    margin = 0.01 * (span or 1.0)
    axes.set_xlim(layout.run_left_cM[0] - margin, layout.run_right_cM[-1] + margin)
    top = np.nanmax(np.concatenate([lod[np.isfinite(lod)], [t for _, t in thresholds if np.isfinite(t)], [1.0]]))
    axes.set_ylim(0, 1.08 * top)
    axes.set_xlabel("Chromosome (position in cM within each chromosome)")
    axes.set_ylabel("LOD")
    axes.set_title(f"Main-effect scan: {trait_name}")
    axes.spines[["top", "right"]].set_visible(False)
    if thresholds:
        axes.legend(loc="upper right", frameon=False, fontsize="small")
    return _save(figure, path)


def plot_scan2d_heatmap(path: Path, trait_name: str, binned_lod: np.ndarray, edges: np.ndarray,
                        chromosome_names: Sequence[str], chromosome_starts: np.ndarray,
                        chromosome_stops: np.ndarray, threshold: Optional[Tuple[float, float]] = None) -> Path:
    """Lower-triangle heatmap of pair LODs ``binned_lod`` (n_bins, n_bins) over locus bins ``edges``.

    Rows are the pair's second locus, columns its first (k < l); axes count loci in map order, with
    chromosome boundaries drawn as lines and chromosome names at their centres.  ``threshold`` is an
    ``(alpha, LOD)`` permutation threshold marked on the colour bar.
    """
    n_loci = int(edges[-1])
    figure = _new_figure(8.2, 7)
    axes = figure.add_subplot()
    finite = binned_lod[np.isfinite(binned_lod)]
    vmax = float(finite.max()) if finite.size else 1.0
    colour_map = ListedColormap(_colour_ramp(256))
    colour_map.set_bad("white")
    image = axes.pcolormesh(edges, edges, np.ma.masked_invalid(binned_lod), cmap=colour_map,
                            vmin=0, vmax=max(vmax, 1e-9), shading="flat", rasterized=True)
    axes.set_xlim(0, n_loci)
    axes.set_ylim(n_loci, 0)
    axes.set_aspect("equal")
    boundaries = np.asarray(chromosome_starts[1:], dtype=float)
    for boundary in boundaries:
        axes.plot([boundary, boundary], [boundary, n_loci], color="#555555", lw=0.6)
        axes.plot([0, boundary], [boundary, boundary], color="#555555", lw=0.6)
    axes.plot([0, n_loci], [0, n_loci], color="#555555", lw=0.6)
    if finite.size:
        # a peak may be one cell of a few pixels: ring it, and give its LOD in the empty upper triangle
        row, column = np.unravel_index(np.nanargmax(binned_lod), binned_lod.shape)
        axes.scatter([(edges[column] + edges[column + 1]) / 2], [(edges[row] + edges[row + 1]) / 2], s=160,
                     facecolors="none", edgecolors="#0057b8", linewidths=1.6, zorder=4,
                     label=f"strongest pair (LOD {vmax:.2f})")
        axes.legend(loc="upper right", frameon=False, fontsize="small")
    centres = (np.asarray(chromosome_starts) + np.asarray(chromosome_stops)) / 2
    widths = np.asarray(chromosome_stops) - np.asarray(chromosome_starts)
    labels = _thin_labels(list(chromosome_names), centres, widths, 0.015)
    axes.set_xticks(centres, labels)
    axes.set_yticks(centres, labels)
    axes.tick_params(length=0)
    bin_size = int(edges[1] - edges[0]) if edges.size > 1 else 1
    resolution = "one cell per pair" if bin_size == 1 else f"maximum over bins of {bin_size} x {bin_size} loci"
    axes.set_xlabel("First locus of the pair: chromosome (loci in map order)")
    axes.set_ylabel("Second locus of the pair: chromosome (loci in map order)")
    axes.set_title(f"Epistatic scan: {trait_name}\n{n_loci} loci, {resolution}", fontsize="medium")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.8)
    colour_bar.set_label("LOD")
    if threshold is not None and np.isfinite(threshold[1]) and threshold[1] <= vmax:
        colour_bar.ax.axhline(threshold[1], color="black", lw=1.5)
        colour_bar.ax.text(1.6, threshold[1], f"{100 * threshold[0]:g}%", va="center", fontsize="small",
                           transform=colour_bar.ax.get_yaxis_transform())
    return _save(figure, path)


def _colour_ramp(n_colours: int) -> np.ndarray:
    """A white-yellow-red-black ramp: low LODs fade into the background, peaks stand out."""
    anchors = np.array([[1.0, 1.0, 1.0], [1.0, 0.9, 0.4], [0.95, 0.45, 0.1], [0.7, 0.05, 0.05], [0.2, 0.0, 0.0]])
    points = np.linspace(0, 1, anchors.shape[0])
    grid = np.linspace(0, 1, n_colours)
    return np.stack([np.interp(grid, points, anchors[:, c]) for c in range(3)], axis=1)


def plot_variance_proportions(path: Path, trait_names: Sequence[str], component_names: Sequence[str],
                              proportions: np.ndarray) -> Path:
    """Stacked horizontal bars: each trait's phenotypic variance split into components (n_traits, n_components)."""
    proportions = np.nan_to_num(np.asarray(proportions, dtype=float), nan=0.0)
    n_traits, n_components = proportions.shape
    assert n_components == len(component_names) and n_traits == len(trait_names)
    figure = _new_figure(10, max(3.2, 1.2 + 0.45 * n_traits))
    axes = figure.add_subplot()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    rows = np.arange(n_traits)
    left = np.zeros(n_traits)
    for c, name in enumerate(component_names):
        colour = "#bbbbbb" if str(name) == "residual" else palette[c % len(palette)]
        share = proportions[:, c]
        bars = axes.barh(rows, share, left=left, color=colour, edgecolor="white", lw=0.5, label=str(name))
        for bar, value in zip(bars, share):
            if value >= 0.06:
                axes.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2,
                          f"{100 * value:.0f}%", ha="center", va="center", fontsize="small")
        left += share
    axes.set_yticks(rows, [str(t) for t in trait_names])
    axes.invert_yaxis()
    axes.set_xlim(0, max(1.0, float(left.max()) if n_traits else 1.0))
    axes.set_xlabel("Proportion of phenotypic variance")
    axes.set_ylabel("Trait")
    axes.set_title("Variance components (REML)")
    axes.legend(title="component", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return _save(figure, path)
