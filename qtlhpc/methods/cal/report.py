"""The CAL sections of ``qtlhpc report`` (de Ridder et al. 2010).

* score against q-value per topology (the observed best network of every searched target), with the FDR level;
* the null distributions per topology (the permutation replicates' best scores) against the observed scores;
* the selected networks drawn as logic diagrams over the genome: input loci at their place on the locus axis,
  a gate labelled with the topology, the target above it;
* tables: per topology (pi0, null size, significant and selected targets, as the paper's Fig. 5A) and the
  selected networks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtlhpc.report.figures import CHROMOSOME_COLOURS, _new_figure, _save
from qtlhpc.report.html import FigureLink, Section, Table

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")


def plot_score_q(path: Path, names, score, censored, q, fdr: float) -> Path:
    figure = _new_figure(7.5, 4.2)
    axis = figure.add_subplot()
    for j, name in enumerate(names):
        keep = ~censored[:, j]
        axis.scatter(score[keep, j], np.maximum(q[keep, j], 1e-4), s=10, color=PALETTE[j % len(PALETTE)],
                     label=str(name), linewidths=0)
    axis.axhline(fdr, color="black", linestyle="--", linewidth=0.8)
    axis.set_yscale("log")
    axis.set_xlabel("best score f* of the topology")
    axis.set_ylabel("q-value")
    axis.set_title("Observed networks: score against q (dashed: FDR level)")
    axis.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(figure, path)


def plot_nulls(path: Path, names, observed, observed_censored, null, null_censored) -> Path:
    n = len(names)
    cols = min(n, 4)
    rows = -(-n // cols)
    figure = _new_figure(2.6 * cols, 2.1 * rows)
    for j, name in enumerate(names):
        axis = figure.add_subplot(rows, cols, j + 1)
        values = null[:, :, j][~null_censored[:, :, j]]
        obs = observed[:, j][~observed_censored[:, j]]
        both = np.concatenate([values, obs])
        if both.size:
            bins = np.linspace(both.min(), both.max() + 1e-9, 25)
            axis.hist(values, bins=bins, density=True, color=CHROMOSOME_COLOURS[1], alpha=0.7, label="null")
            axis.hist(obs, bins=bins, density=True, histtype="step", color="#c0392b", label="observed")
        axis.set_title(str(name), fontsize=8)
        axis.tick_params(labelsize=6)
        if j == 0:
            axis.legend(fontsize=6, frameon=False)
    figure.suptitle("Best scores per topology: permutation null (uncensored) and observed", fontsize=9)
    return _save(figure, path)


def plot_networks(path: Path, networks, n_loci: int, chromosomes) -> Path:
    """``networks``: list of (target label, topology name, [locus indices])."""
    figure = _new_figure(10, 4.4)
    axis = figure.add_subplot()
    # the genome axis: loci in order, chromosomes banded
    if chromosomes.size and any(chromosomes):
        for index, chromosome in enumerate(dict.fromkeys(chromosomes.tolist())):
            rows = np.flatnonzero(chromosomes == chromosome)
            if index % 2:
                axis.axvspan(rows[0] - 0.5, rows[-1] + 0.5, ymax=0.08, color="#dddddd", lw=0)
            axis.text((rows[0] + rows[-1]) / 2, -0.12, str(chromosome), ha="center", va="top", fontsize=7)
    axis.plot([-0.5, n_loci - 0.5], [0, 0], color="black", linewidth=1)
    k = max(1, len(networks))
    for i, (target, topology, loci) in enumerate(networks):
        colour = PALETTE[i % len(PALETTE)]
        gate_x = (i + 0.5) / k * n_loci - 0.5
        gate_y = 1.0
        for c in loci:
            axis.plot([c, gate_x], [0, gate_y], color=colour, linewidth=0.9)
            axis.plot([c], [0], marker="o", color=colour, markersize=4)
        axis.plot([gate_x, gate_x], [gate_y, 1.8], color=colour, linewidth=0.9)
        axis.text(gate_x, gate_y, topology, ha="center", va="center", fontsize=7,
                  bbox=dict(boxstyle="round,pad=0.25", facecolor="white", edgecolor=colour))
        axis.text(gate_x, 1.85, str(target), ha="center", va="bottom", fontsize=6, rotation=30, color=colour)
    axis.set_xlim(-0.5, n_loci - 0.5)
    axis.set_ylim(-0.3, 2.6)
    axis.set_yticks([])
    axis.set_xlabel("locus (marker cluster, in genome order)")
    axis.set_title("Selected networks: loci -> gate -> target")
    for side in ("left", "right", "top"):
        axis.spines[side].set_visible(False)
    return _save(figure, path)


def cal_section(results, header, out_dir: Path, top: int) -> Section:
    title = "CAL logic networks"
    status = header.stage("cal-select")
    if not status.is_complete:
        return Section(title, notes=[status.explain() + " No CAL figures."])
    names = results.read("cal-prepare/topology_names")
    n_inputs = results.read("cal-prepare/topology_inputs")
    searched = results.read("cal-prepare/searched")
    targets = results.read("cal-prepare/target_ids")[searched]
    loci = results.read("cal-prepare/locus_names")
    chromosomes = results.read("cal-prepare/locus_chromosomes")
    f_tol = float(results.read("cal-prepare/f_tol"))
    score = results.read("cal-search/score")
    censored = results.read("cal-search/censored")
    inputs = results.read("cal-search/inputs", (slice(0, 1),))[0]
    p = results.read("cal-select/pvalue")
    q = results.read("cal-select/qvalue")
    pi0 = results.read("cal-select/pi0")
    selected = results.read("cal-select/selected")
    n_significant = results.read("cal-select/n_significant")
    n_selected = results.read("cal-select/n_selected")
    null_size = results.read("cal-select/null_size")
    fdr = float(results.read("cal-select/fdr"))
    figures = [
        FigureLink(plot_score_q(out_dir / "cal_score_q.png", names, score[0], censored[0], q, fdr).name,
                   "Best network score of each searched target against its q-value, per topology"),
        FigureLink(plot_nulls(out_dir / "cal_nulls.png", names, score[0], censored[0], score[1:], censored[1:]).name,
                   "Permutation null of each topology (replicates x searched targets) against the observed scores"),
    ]
    chosen = np.flatnonzero(selected >= 0)
    order = chosen[np.argsort(np.array([q[i, selected[i]] for i in chosen]), kind="stable")][:top]
    drawn = [(str(targets[i]), str(names[selected[i]]), [int(c) for c in inputs[i, selected[i]] if c >= 0])
             for i in order[:12]]
    if drawn:
        figures.append(FigureLink(plot_networks(out_dir / "cal_networks.png", drawn, loci.size, chromosomes).name,
                                  "The selected networks with the smallest q (up to 12) over the loci"))
    summary = [(str(names[j]), str(int(n_inputs[j])), f"{pi0[j]:.3f}", str(int(null_size[j])),
                str(int(n_significant[j])), str(int(n_selected[j]))) for j in range(names.size)]
    rows = [(str(targets[i]), str(names[selected[i]]),
             ", ".join(str(loci[c]) for c in inputs[i, selected[i]] if c >= 0), f"{score[0, i, selected[i]]:.3f}",
             f"{p[i, selected[i]]:.3g}", f"{q[i, selected[i]]:.3g}") for i in order]
    notes = [f"{searched.size} targets searched (fopt >= f_tol = {f_tol:.3f}), {names.size} topologies, "
             f"{score.shape[0] - 1} permutation replicates; {chosen.size} targets have a network at q <= {fdr:g}."]
    return Section(title, notes=notes, figures=figures, tables=[
        Table("Per topology (significant: q <= fdr; selected: the parsimonious choice)",
              ("topology", "inputs", "pi0", "null size", "significant", "selected"), summary,
              (False, True, True, True, True, True)),
        Table(f"The {len(rows)} selected networks with the smallest q", ("target", "topology", "loci", "score", "p",
                                                                          "q"), rows,
              (False, False, False, True, True, True)),
    ])


SECTION_BUILDERS = (cal_section,)
