"""The eQTL sections of ``qtlhpc report``: the cis scan's Manhattan-style plot, its p-value histogram
with pi0, and the table of the strongest eGenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtlhpc.report.figures import CHROMOSOME_COLOURS, _new_figure, _save
from qtlhpc.report.html import FigureLink, Section, Table


def _chromosome_order(names: np.ndarray):
    """Chromosomes in natural order (1, 2, ..., 10, X, Y), as they appear otherwise."""
    def key(name):
        text = str(name).removeprefix("chr")
        return (0, int(text), "") if text.isdigit() else (1, 0, text)
    return sorted(dict.fromkeys(names.tolist()), key=key)


def plot_cis_manhattan(path: Path, chromosomes, tss, minus_log10_p, called) -> Path:
    """-log10 pval_beta of every gene at its TSS along the genome, eGenes (q <= fdr) outlined."""
    figure = _new_figure(10, 3.6)
    axis = figure.add_subplot()
    offset, ticks, labels = 0.0, [], []
    for index, chromosome in enumerate(_chromosome_order(chromosomes)):
        rows = chromosomes == chromosome
        x = offset + tss[rows].astype(float)
        axis.scatter(x, minus_log10_p[rows], s=6, color=CHROMOSOME_COLOURS[index % 2], linewidths=0)
        hits = rows & called
        axis.scatter(offset + tss[hits].astype(float), minus_log10_p[hits], s=18, facecolors="none",
                     edgecolors="#c0392b", linewidths=0.8)
        span = float(tss[rows].max()) if rows.any() else 1.0
        ticks.append(offset + span / 2)
        labels.append(str(chromosome))
        offset += span * 1.02 + 1
    axis.set_xticks(ticks, labels)
    axis.set_xlabel("gene TSS along the genome (chromosomes in order)")
    axis.set_ylabel("-log10 beta-approximated p")
    axis.set_title("cis-eQTL: best variant per gene (eGenes circled)")
    return _save(figure, path)


def plot_pvalue_histogram(path: Path, pvalues, pi0: float) -> Path:
    """Histogram of the genes' pval_beta (density) with the estimated pi0 as a horizontal line."""
    figure = _new_figure(5, 3.4)
    axis = figure.add_subplot()
    axis.hist(pvalues, bins=20, range=(0, 1), density=True, color=CHROMOSOME_COLOURS[1], edgecolor="white")
    if np.isfinite(pi0):
        axis.axhline(pi0, color="#c0392b", linestyle="--", label=f"pi0 = {pi0:.3f}")
        axis.legend(loc="upper right", frameon=False)
    axis.set_xlabel("beta-approximated p-value")
    axis.set_ylabel("density")
    axis.set_title("cis p-values of the genes")
    return _save(figure, path)


def cis_section(results, header, out_dir: Path, top: int) -> Section:
    title = "cis-eQTL"
    status = header.stage("cis")
    if not status.is_complete:
        return Section(title, notes=[status.explain() + " No cis-eQTL figures."])
    gene_ids = results.read("cis/gene_ids")
    index = results.read("cis/gene_index")
    pval = results.read("cis/pval_beta")
    q = results.read("cis/qvalue")
    pi0 = float(results.read("cis/pi0"))
    chromosomes = results.read("expression/gene_chromosomes")[index]
    tss = results.read("expression/gene_tss")[index]
    tested = np.isfinite(pval)
    called = tested & (q <= 0.05)
    with np.errstate(divide="ignore"):
        minus_log10 = -np.log10(np.where(tested, np.maximum(pval, 1e-300), np.nan))
    figures = [
        FigureLink(plot_cis_manhattan(out_dir / "cis_manhattan.png", chromosomes[tested], tss[tested],
                                      minus_log10[tested], called[tested]).name,
                   "Best cis variant of every gene: -log10 beta-approximated p at the gene's TSS"),
        FigureLink(plot_pvalue_histogram(out_dir / "cis_pvalues.png", pval[tested], pi0).name,
                   "Distribution of the genes' beta-approximated p-values; the line is the estimated pi0"),
    ]
    order = np.argsort(np.where(tested, pval, np.inf), kind="stable")[:top]
    variants = results.read("cis/variant_ids")
    columns = ("gene", "chromosome", "TSS", "best variant", "distance", "nominal p", "slope", "beta p", "q")
    distance = results.read("cis/tss_distance")
    nominal = results.read("cis/pval_nominal")
    slope = results.read("cis/slope")
    rows = [(str(gene_ids[k]), str(chromosomes[k]), str(int(tss[k])), str(variants[k]), str(int(distance[k])),
             f"{nominal[k]:.3g}", f"{slope[k]:.3g}", f"{pval[k]:.3g}", f"{q[k]:.3g}")
            for k in order if tested[k]]
    notes = [f"{int(called.sum())} of {int(tested.sum())} genes with cis variants are eGenes at q <= 0.05 "
             f"(pi0 = {pi0:.3f}); {int((~tested).sum())} genes have no variant in their window."]
    return Section(title, notes=notes, figures=figures,
                   tables=[Table(f"The {len(rows)} strongest cis-eQTL", columns, rows,
                                 (False, False, True, False, True, True, True, True, True))])


SECTION_BUILDERS = (cis_section,)
