"""The eQTL sections of ``qtlhpc report``.

Method ``eqtl`` (:data:`SECTION_BUILDERS`): the cis scan's Manhattan-style plot, its p-value histogram with
pi0, and the table of the strongest eGenes.  Method ``eqtl-cross`` (:data:`CROSS_SECTION_BUILDERS`): the eQTL
map (gene position against eQTL position, chromosomes in order on both axes), the p-value histograms (cis
with Storey's pi0, p_iut of every tested pair), the strongest cis-eQTL, the cis and PC regions, and the kept
trans pairs.  :data:`SECTION_BUILDERS_BY_METHOD` gives each method's builders."""

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


# ---------------------------------------------------------------------------------------------------------
# The mapping of a cross (method "eqtl-cross": stages cross-eqtl and cross-trans): the trans eQTL map, the
# p-value histograms, the strongest cis-eQTL, the kept trans pairs and the regions.

P_IUT_ROWS_PER_READ = 256  # regulators per read of cross-trans/p_iut (a (256, G) float64 slab)


class GenomeAxis:
    """Cumulative physical positions over chromosomes in natural order: ``chromosome, position -> x``.

    ``chromosomes`` are the names met (genes' and markers'); a chromosome's span is the largest position on
    it (genes' starts and markers' positions together), and chromosome ``k + 1`` starts 2 % after ``k`` ends.
    """

    def __init__(self, chromosomes: np.ndarray, positions: np.ndarray):
        chromosomes = np.asarray(chromosomes).astype(str)
        positions = np.asarray(positions, dtype=float)
        self.names = _chromosome_order(chromosomes)
        self.offsets, self.spans, offset = {}, {}, 0.0
        for name in self.names:
            on = positions[(chromosomes == name) & np.isfinite(positions)]
            span = float(on.max()) if on.size else 1.0
            self.offsets[name], self.spans[name] = offset, span
            offset += span * 1.02 + 1
        self.length = offset

    def x(self, chromosomes, positions) -> np.ndarray:
        """Cumulative positions of ``(chromosome, position)`` pairs, each ``(n,)``."""
        chromosomes = np.asarray(chromosomes).astype(str)
        offsets = np.array([self.offsets[name] for name in chromosomes.tolist()], dtype=float)
        return offsets + np.asarray(positions, dtype=float)

    def ticks(self):
        """Tick positions (chromosome centres), labels and chromosome boundaries."""
        centres = [self.offsets[name] + self.spans[name] / 2 for name in self.names]
        bounds = [self.offsets[name] + self.spans[name] * 1.01 + 0.5 for name in self.names[:-1]]
        return centres, [str(name) for name in self.names], bounds


#: layers of the eQTL map: (label, colour, marker, size), drawn in this order
MAP_LAYERS = {
    "trans": ("trans pair (model (1), q <= fdr)", "#c0392b", "o", 10),
    "cis_trans": ("cis-trans target (cis region peak)", "#e67e22", "s", 10),
    "pc_target": ("PC-eQTL target (PC region peak)", "#8e44ad", "^", 12),
    "cis": ("cis-eQTL (peak marker)", "#1f4e99", "o", 8),
}


def plot_eqtl_map(path: Path, axis_layout: GenomeAxis, layers) -> Path:
    """The eQTL map: gene (target) position (y) against eQTL position (x), both cumulative over the genome.

    ``layers``: ``{name: (x (n,), y (n,))}`` for names of :data:`MAP_LAYERS`; empty layers are left out."""
    figure = _new_figure(7.2, 6.6)
    axis = figure.add_subplot()
    centres, labels, bounds = axis_layout.ticks()
    for bound in bounds:
        axis.axvline(bound, color="#dddddd", linewidth=0.6)
        axis.axhline(bound, color="#dddddd", linewidth=0.6)
    axis.plot([0, axis_layout.length], [0, axis_layout.length], color="#eeeeee", linewidth=0.8, zorder=0)
    for name, (label, colour, marker, size) in MAP_LAYERS.items():
        x, y = layers.get(name, (np.empty(0), np.empty(0)))
        if len(x):
            axis.scatter(x, y, s=size, color=colour, marker=marker, linewidths=0, alpha=0.75,
                         label=f"{label}: {len(x)}")
    axis.set_xlim(0, axis_layout.length)
    axis.set_ylim(0, axis_layout.length)
    axis.set_xticks(centres, labels)
    axis.set_yticks(centres, labels)
    axis.set_xlabel("eQTL position (chromosomes in order)")
    axis.set_ylabel("gene (target) position (chromosomes in order)")
    axis.set_title("eQTL map of the cross")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="upper left", fontsize=7, frameon=True, framealpha=0.9)
    return _save(figure, path)


def plot_histogram(path: Path, pvalues, pi0: float, xlabel: str, title: str, *, counts=None) -> Path:
    """Density histogram of ``pvalues`` on 20 bins of [0, 1] (or of precomputed ``counts (20,)``), with
    ``pi0`` as a line when finite."""
    figure = _new_figure(5, 3.4)
    axis = figure.add_subplot()
    edges = np.linspace(0, 1, 21)
    if counts is None:
        counts, _ = np.histogram(pvalues, bins=edges)
    total = max(int(np.sum(counts)), 1)
    axis.bar(edges[:-1], np.asarray(counts) / (total * 0.05), width=0.05, align="edge",
             color=CHROMOSOME_COLOURS[1], edgecolor="white")
    if np.isfinite(pi0):
        axis.axhline(pi0, color="#c0392b", linestyle="--", label=f"pi0 = {pi0:.3f}")
        axis.legend(loc="upper right", frameon=False)
    axis.set_xlim(0, 1)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("density")
    axis.set_title(title)
    return _save(figure, path)


def storey_pi0(pvalues):
    """Storey's pi0 of ``pvalues (n,)`` (qvalue's smoother) and a note: ``(pi0, "")``, or ``(nan, why)``
    when it cannot be estimated."""
    from qtlhpc.errors import InputError
    from qtlhpc.stats.qvalue import pi0_estimate

    try:
        return pi0_estimate(pvalues).pi0, ""
    except InputError as error:
        return float("nan"), f"pi0 cannot be estimated from these p-values ({error}); no line is drawn."


class CrossMap:
    """What the cross sections share: gene ids, chromosomes and starts, and the markers' physical map
    (None without a complete cross-eqtl stage), on one genome axis."""

    def __init__(self, results, with_markers: bool):
        self.gene_ids = results.read("expression/gene_ids").astype(str)
        self.gene_chromosomes = results.read("expression/gene_chromosomes").astype(str)
        self.gene_starts = results.read("expression/gene_starts").astype(float)
        self.marker_chromosomes = self.marker_positions = None
        chromosomes, positions = [self.gene_chromosomes], [self.gene_starts]
        if with_markers:
            self.marker_chromosomes = results.read("cross-eqtl/marker_chromosomes").astype(str)
            self.marker_positions = results.read("cross-eqtl/marker_positions_bp").astype(float)
            chromosomes.append(self.marker_chromosomes)
            positions.append(self.marker_positions)
        self.axis = GenomeAxis(np.concatenate(chromosomes), np.concatenate(positions))

    def gene_x(self, genes) -> np.ndarray:
        genes = np.asarray(genes, dtype=np.int64)
        return self.axis.x(self.gene_chromosomes[genes], self.gene_starts[genes])

    def marker_x(self, markers) -> np.ndarray:
        markers = np.asarray(markers, dtype=np.int64)
        return self.axis.x(self.marker_chromosomes[markers], self.marker_positions[markers])

    def marker_text(self, marker: int) -> str:
        """``chromosome:position`` of marker ``marker`` (the results file stores no marker names)."""
        if marker < 0 or self.marker_chromosomes is None:
            return ""
        return f"{self.marker_chromosomes[marker]}:{int(round(self.marker_positions[marker]))}"


def _peak_targets(results, prefix: str, region_prefix: str, cross_map: CrossMap):
    """x (the region's peak marker) and y (the target gene) of ``cross-eqtl/{prefix}_*`` hits."""
    regions = results.read(f"cross-eqtl/{prefix}_region")
    genes = results.read(f"cross-eqtl/{prefix}_gene")
    peaks = results.read(f"cross-eqtl/{region_prefix}_region_peak")
    return cross_map.marker_x(peaks[regions]), cross_map.gene_x(genes)


def eqtl_map_section(results, header, out_dir: Path, top: int) -> Section:
    """The trans eQTL map: kept trans pairs at the regulator's closest marker, cis-trans and PC targets at
    their region's peak marker, and the cis-eQTL at their peak marker (the diagonal)."""
    title = "eQTL map of the cross"
    cis_status, trans_status = header.stage("cross-eqtl"), header.stage("cross-trans")
    if not (cis_status.is_complete or trans_status.is_complete):
        return Section(title, notes=[cis_status.explain(), trans_status.explain() + " No eQTL map."])
    notes = [status.explain() for status in (cis_status, trans_status) if not status.is_complete]
    cross_map = CrossMap(results, with_markers=cis_status.is_complete)
    layers = {}
    if trans_status.is_complete:
        regulators = results.read("cross-trans/pair_regulator")
        targets = results.read("cross-trans/pair_target")
        if cis_status.is_complete:
            closest = results.read("cross-eqtl/closest_marker")[regulators]
            has = closest >= 0
            x = np.full(regulators.size, np.nan)
            x[has] = cross_map.marker_x(closest[has])
            x[~has] = cross_map.gene_x(regulators[~has])
        else:
            x = cross_map.gene_x(regulators)
            notes.append("Without cross-eqtl (the physical map of the markers) a trans pair is drawn at its "
                         "regulator gene's start instead of its closest marker.")
        layers["trans"] = (x, cross_map.gene_x(targets))
    if cis_status.is_complete:
        layers["cis"] = (cross_map.marker_x(results.read("cross-eqtl/cis_eqtl_peak")),
                         cross_map.gene_x(results.read("cross-eqtl/cis_eqtl_gene")))
        layers["cis_trans"] = _peak_targets(results, "cis_trans", "cis", cross_map)
        layers["pc_target"] = _peak_targets(results, "pc_target", "pc", cross_map)
    figure = plot_eqtl_map(out_dir / "cross_eqtl_map.png", cross_map.axis, layers)
    counts = ", ".join(f"{len(layers[name][0])} {MAP_LAYERS[name][0]}" for name in MAP_LAYERS if name in layers)
    notes.append(f"Drawn: {counts}. cis-eQTL lie on the diagonal; a vertical band is an eQTL hotspot.")
    return Section(title, notes=notes, figures=[FigureLink(
        figure.name, "eQTL map: each point is a gene (y, at its start) and the marker of its eQTL (x); "
                     "chromosomes in order on both axes")])


def _p_iut_counts(results, n_genes: int) -> np.ndarray:
    """Histogram counts (20 bins of [0, 1]) of every tested pair's p_iut, read in slabs of regulators."""
    counts = np.zeros(20, dtype=np.int64)
    for start in range(0, n_genes, P_IUT_ROWS_PER_READ):
        slab = results.read("cross-trans/p_iut", (slice(start, min(start + P_IUT_ROWS_PER_READ, n_genes)),))
        counts += np.histogram(slab[np.isfinite(slab)], bins=np.linspace(0, 1, 21))[0]
    return counts


def cross_pvalue_section(results, header, out_dir: Path, top: int) -> Section:
    """p-value histograms: the cross's cis p-values with Storey's pi0, and every tested pair's p_iut."""
    title = "p-values of the cross mapping"
    notes, figures = [], []
    cis_status, trans_status = header.stage("cross-eqtl"), header.stage("cross-trans")
    if cis_status.is_complete:
        cis_p = results.read("cross-eqtl/cis_pvalue")
        cis_p = cis_p[np.isfinite(cis_p)]
        pi0, why = storey_pi0(cis_p)
        notes += [why] if why else [f"cis p-values of {cis_p.size} tested genes: Storey pi0 = {pi0:.3f}. A cis "
                                    "p-value is the smallest marker p times the number of cis markers, capped at "
                                    "1: the pile at 1 raises pi0."]
        figures.append(FigureLink(plot_histogram(
            out_dir / "cross_cis_pvalues.png", cis_p, pi0, "cis p-value (min over cis markers x markers)",
            "cis p-values of the cross").name,
            "Distribution of the genes' cis p-values; the line is Storey's pi0 (qvalue's smoother)"))
    else:
        notes.append(cis_status.explain())
    if trans_status.is_complete:
        n_genes = int(results.read("expression/gene_ids").size)
        counts = _p_iut_counts(results, n_genes)
        notes.append(f"p_iut of the {int(counts.sum())} tested regulator-target pairs: no pi0 is estimated, since "
                     "an intersection-union p-value max(p_b1, p_b2) is conservative (not uniform) under the null.")
        figures.append(FigureLink(plot_histogram(
            out_dir / "cross_trans_pvalues.png", None, float("nan"), "intersection-union p-value (model (1))",
            "trans p-values of all tested pairs", counts=counts).name,
            "Distribution of the p_iut of every tested regulator-target pair"))
    else:
        notes.append(trans_status.explain())
    return Section(title, notes=notes, figures=figures)


def cross_cis_section(results, header, out_dir: Path, top: int) -> Section:
    """The strongest cis-eQTL of the cross and the cis and PC regions."""
    title = "cis-eQTL and regions of the cross"
    status = header.stage("cross-eqtl")
    if not status.is_complete:
        return Section(title, notes=[status.explain() + " No cis-eQTL tables."])
    cross_map = CrossMap(results, with_markers=True)
    pvalue, qvalue = results.read("cross-eqtl/cis_pvalue"), results.read("cross-eqtl/cis_qvalue")
    peak, significant = results.read("cross-eqtl/cis_peak_marker"), results.read("cross-eqtl/cis_significant")
    tested = np.isfinite(pvalue)
    order = [k for k in np.argsort(np.where(tested, pvalue, np.inf), kind="stable")[:top] if tested[k]]
    rows = [(cross_map.gene_ids[k], cross_map.gene_chromosomes[k], str(int(cross_map.gene_starts[k])),
             cross_map.marker_text(int(peak[k])), f"{pvalue[k]:.3g}", f"{qvalue[k]:.3g}",
             "yes" if significant[k] else "no") for k in order]
    tables = [Table(f"The {len(rows)} strongest cis-eQTL of the cross",
                    ("gene", "chromosome", "start", "peak marker", "cis p", "BH q", "significant"), rows,
                    (False, False, True, False, True, True, False))]
    tables += [_regions_table(results, "cis", "cis_eqtl", "cis_trans", "cis-eQTL", cross_map),
               _regions_table(results, "pc", "pc_eqtl", "pc_target", "PC-eQTL", cross_map)]
    notes = [f"{int(significant.sum())} of {int(tested.sum())} tested genes have a cis-eQTL (BH q <= "
             f"cross_eqtl.alpha); {int((~tested).sum())} genes have no marker on their chromosome. Markers are "
             "named chromosome:position (bp)."]
    return Section(title, notes=notes, tables=tables)


def _regions_table(results, prefix: str, eqtl: str, hits: str, what: str, cross_map: CrossMap) -> Table:
    peak = results.read(f"cross-eqtl/{prefix}_region_peak")
    start, end = results.read(f"cross-eqtl/{prefix}_region_start_bp"), results.read(f"cross-eqtl/{prefix}_region_end_bp")
    n_eqtl = np.bincount(results.read(f"cross-eqtl/{eqtl}_region"), minlength=peak.size)
    n_targets = np.bincount(results.read(f"cross-eqtl/{hits}_region"), minlength=peak.size)
    rows = [(str(k), str(cross_map.marker_chromosomes[peak[k]]), str(int(round(start[k]))), str(int(round(end[k]))),
             cross_map.marker_text(int(peak[k])), str(int(n_eqtl[k])), str(int(n_targets[k])))
            for k in range(peak.size)]
    return Table(f"{what} regions ({len(rows)})", ("region", "chromosome", "start (bp)", "end (bp)", "peak marker",
                                                   f"{what}", "targets at the peak"), rows,
                 (True, False, True, True, False, True, True))


def trans_pairs_section(results, header, out_dir: Path, top: int) -> Section:
    """The kept trans pairs (q <= cross_trans.fdr), the ``top`` smallest q first."""
    title = "trans pairs of the cross"
    status = header.stage("cross-trans")
    if not status.is_complete:
        return Section(title, notes=[status.explain() + " No trans table."])
    gene_ids = results.read("expression/gene_ids").astype(str)
    chromosomes = results.read("expression/gene_chromosomes").astype(str)
    regulator, target = results.read("cross-trans/pair_regulator"), results.read("cross-trans/pair_target")
    values = {name: results.read(f"cross-trans/pair_{name}") for name in ("b1", "b2", "p_b1", "p_b2", "p_iut", "q_iut")}
    order = np.lexsort((values["p_iut"], values["q_iut"]))[:top]
    rows = [(gene_ids[regulator[k]], chromosomes[regulator[k]], gene_ids[target[k]], chromosomes[target[k]],
             *(f"{values[name][k]:.3g}" for name in ("b1", "b2", "p_b1", "p_b2", "p_iut", "q_iut")))
            for k in order]
    n_tests, n_kept = int(results.read("cross-trans/n_tests")), int(results.read("cross-trans/n_kept"))
    notes = [f"{regulator.size} regulator-target pairs at q <= cross_trans.fdr of {n_tests} tested "
             f"({n_kept} with p_iut <= cross_trans.keep_pvalue); {np.unique(regulator).size} regulators, "
             f"{np.unique(target).size} targets."]
    return Section(title, notes=notes, tables=[Table(
        f"The {len(rows)} strongest trans pairs (by q)",
        ("regulator", "chromosome", "target", "chromosome", "b1", "b2", "p b1", "p b2", "p_iut", "q"), rows,
        (False, False, False, False, True, True, True, True, True, True))])


CROSS_SECTION_BUILDERS = (eqtl_map_section, cross_pvalue_section, cross_cis_section, trans_pairs_section)
"""The sections of method ``eqtl-cross`` (stages cross-eqtl and cross-trans)."""

SECTION_BUILDERS_BY_METHOD = {"eqtl": SECTION_BUILDERS, "eqtl-cross": CROSS_SECTION_BUILDERS}
"""Each method of this room and its sections (the room holds two methods: ``eqtl`` and ``eqtl-cross``)."""
