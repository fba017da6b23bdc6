"""One builder per report section: read a complete stage, draw its figures, fill its tables.

A builder returns a :class:`~qtlhpc.report.html.Section`; for a stage that is absent or incomplete the
section holds only a note saying so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import numpy as np

from qtlhpc.parallel import pair_from_index
from qtlhpc.report import figures
from qtlhpc.report.collect import FileHeader, read_loci, present_datasets, read_optional, thresholds_for
from qtlhpc.report.html import FigureLink, Section, Table
from qtlhpc.report.layout import binned_pair_maximum, bin_edges, chromosome_runs, genome_layout
from qtlhpc.report.ranking import chromosome_peaks, strongest_pairs
from qtlhpc.store import ResultsFile

MAX_HEATMAP_BINS = 400  # cells per side of a 2D heatmap: about two pixels each at the figure's size
DEFAULT_EPISTATIC_NAMES = ("aa", "ad", "da", "dd")


def figure_file_name(prefix: str, index: int, trait_name: str) -> str:
    """``<prefix>_<index>_<trait>.png`` with the trait reduced to safe file-name characters."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(trait_name)).strip("_.")[:40] or "trait"
    return f"{prefix}_{index:03d}_{slug}.png"


def _number(value, digits: int = 3) -> str:
    value = float(value)
    return "NA" if not np.isfinite(value) else f"{value:.{digits}g}"


def _fixed(value, decimals: int) -> str:
    value = float(value)
    return "NA" if not np.isfinite(value) else f"{value:.{decimals}f}"


def _unavailable(title: str, header: FileHeader, stage: str, what: str) -> Optional[Section]:
    status = header.stage(stage)
    if status.is_complete:
        return None
    return Section(title, notes=[f"{status.explain()} No {what}."])


# ------------------------------------------------------------------------------------------ varcomp


def varcomp_section(results: ResultsFile, header: FileHeader, out_dir: Path, top: int) -> Section:
    title = "Variance components"
    missing = _unavailable(title, header, "varcomp", "variance-component figure")
    if missing:
        return missing
    traits = results.read("varcomp/trait_names")
    components = results.read("varcomp/component_names")
    proportions = results.read("varcomp/variance_proportions")
    file_name = "varcomp_proportions.png"
    figures.plot_variance_proportions(out_dir / file_name, traits, components, proportions)
    rows = [[str(t)] + [_fixed(100 * p, 1) for p in proportions[i]] for i, t in enumerate(traits)]
    table = Table("Share of phenotypic variance (%) per component", ["trait"] + [str(c) for c in components],
                  rows, [False] + [True] * len(components))
    return Section(title, figures=[FigureLink(file_name, "Proportion of the phenotypic variance explained by "
                                              "each kinship and the residual, per trait (REML)")], tables=[table])


# ------------------------------------------------------------------------------------------ scan1d


def scan1d_section(results: ResultsFile, header: FileHeader, out_dir: Path, top: int) -> Section:
    title = "Main-effect (1D) scan"
    missing = _unavailable(title, header, "scan1d", "1D profiles or main-effect table")
    if missing:
        return missing
    traits = results.read("scan1d/trait_names")
    loci = read_loci(results, "scan1d")
    lod = results.read("scan1d/lod")
    layout = genome_layout(loci.chromosomes, loci.positions_cM)
    thresholds = thresholds_for(results, header, traits, "1d")
    section = Section(title)
    if thresholds is None:
        section.notes.append("No complete permutations stage: the profiles show no genome-wide threshold.")
    for t, trait in enumerate(traits):
        lines = [] if thresholds is None else list(zip(thresholds[0], thresholds[1][:, t]))
        file_name = figure_file_name("scan1d", t, trait)
        figures.plot_scan1d_profile(out_dir / file_name, str(trait), layout, lod[t], lines)
        section.figures.append(FigureLink(file_name, f"LOD profile of {trait} along the genome"))
    section.tables.append(_scan1d_table(results, traits, loci, lod, layout, top))
    return section


def _scan1d_table(results, traits, loci, lod, layout, top) -> Table:
    present = present_datasets(results, "scan1d")
    pvalue = read_optional(results, "scan1d", "pvalue", present)
    effects = read_optional(results, "scan1d", "effects", present)
    effect_se = read_optional(results, "scan1d", "effect_se", present)
    effect_names = read_optional(results, "scan1d", "effect_names", present)
    if effect_names is None and effects is not None:
        effect_names = np.array(["a", "d"][:effects.shape[2]])
    trait_index, locus_index = chromosome_peaks(lod, layout.starts, layout.stops, top)
    columns = ["trait", "locus", "chromosome", "position (cM)", "LOD", "p-value"]
    if effects is not None:
        for name in effect_names:
            columns += [f"{name}", f"SE({name})"]
    rows = []
    for t, k in zip(trait_index, locus_index):
        row = [str(traits[t]), str(loci.names[k]), str(loci.chromosomes[k]), _fixed(loci.positions_cM[k], 1),
               _fixed(lod[t, k], 2), _number(pvalue[t, k]) if pvalue is not None else "NA"]
        if effects is not None:
            for e in range(len(effect_names)):
                row += [_number(effects[t, k, e]), _number(effect_se[t, k, e]) if effect_se is not None else "NA"]
        rows.append(row)
    caption = (f"Top {len(rows)} main-effect QTL: the highest-LOD locus of each chromosome and trait, "
               f"strongest first")
    return Table(caption, columns, rows, [False, False, False] + [True] * (len(columns) - 3))


# ------------------------------------------------------------------------------------------ scan2d


def scan2d_section(results: ResultsFile, header: FileHeader, out_dir: Path, top: int,
                   max_bins: int = MAX_HEATMAP_BINS) -> Section:
    title = "Epistatic (2D) scan"
    missing = _unavailable(title, header, "scan2d", "2D heatmap or epistatic-pair table")
    if missing:
        return missing
    traits = results.read("scan2d/trait_names")
    loci = read_loci(results, "scan2d")
    n_loci = len(loci)
    section = Section(title)
    if n_loci < 2:
        section.notes.append(f"scan2d has {n_loci} locus: no pairs to show.")
        return section
    names, starts, stops = chromosome_runs(loci.chromosomes)
    edges = bin_edges(n_loci, max_bins)
    thresholds = thresholds_for(results, header, traits, "2d")
    for t, trait in enumerate(traits):
        binned = binned_pair_maximum(results.read("scan2d/lod", (t, slice(None))), n_loci, edges)
        threshold = None
        if thresholds is not None and thresholds[0].size:
            strictest = int(np.argmin(thresholds[0]))
            threshold = (float(thresholds[0][strictest]), float(thresholds[1][strictest, t]))
        file_name = figure_file_name("scan2d", t, trait)
        figures.plot_scan2d_heatmap(out_dir / file_name, str(trait), binned, edges, names, starts, stops, threshold)
        section.figures.append(FigureLink(file_name, f"LOD of every locus pair for {trait} (lower triangle)"))
    section.tables.append(_scan2d_table(results, traits, loci, top))
    return section


def _scan2d_table(results, traits, loci, top) -> Table:
    present = present_datasets(results, "scan2d")
    columns = ["trait", "locus 1", "chromosome 1", "position 1 (cM)", "locus 2", "chromosome 2",
               "position 2 (cM)", "LOD", "p-value"]
    if {"top_trait", "top_locus_1", "top_locus_2", "top_lod"} <= present:
        trait_index = results.read("scan2d/top_trait")
        first, second = results.read("scan2d/top_locus_1"), results.read("scan2d/top_locus_2")
        lod = results.read("scan2d/top_lod")
        pvalue = read_optional(results, "scan2d", "top_pvalue", present)
        effects = read_optional(results, "scan2d", "top_effects", present)
        effect_se = read_optional(results, "scan2d", "top_effect_se", present)
        order = np.argsort(-np.nan_to_num(lod, nan=-np.inf), kind="stable")[:top]
        caption = f"Top {order.size} epistatic pairs (as reported by the scan), strongest first"
    else:
        n_loci = len(loci)
        trait_index, pair_index, lod = strongest_pairs(
            (results.read("scan2d/lod", (t, slice(None))) for t in range(len(traits))), top)
        first, second = pair_from_index(pair_index, n_loci)
        pvalue = None
        if "pvalue" in present:
            pvalue = np.array([results.read("scan2d/pvalue", (int(t), int(p))) for t, p in zip(trait_index, pair_index)])
        effects = effect_se = None
        order = np.arange(lod.size)
        caption = (f"Top {order.size} pairs by LOD over all traits, strongest first (the scan stored no "
                   f"top-pair effects: effects are not shown)")
    effect_names = read_optional(results, "scan2d", "effect_names", present)
    if effects is not None:
        names = effect_names if effect_names is not None else DEFAULT_EPISTATIC_NAMES[:effects.shape[1]]
        for name in names:
            columns += [str(name), f"SE({name})"]
    rows: List[list] = []
    for i in order:
        k, l = int(first[i]), int(second[i])
        row = [str(traits[int(trait_index[i])]), str(loci.names[k]), str(loci.chromosomes[k]),
               _fixed(loci.positions_cM[k], 1), str(loci.names[l]), str(loci.chromosomes[l]),
               _fixed(loci.positions_cM[l], 1), _fixed(lod[i], 2), _number(pvalue[i]) if pvalue is not None else "NA"]
        if effects is not None:
            for e in range(effects.shape[1]):
                row += [_number(effects[i, e]), _number(effect_se[i, e]) if effect_se is not None else "NA"]
        rows.append(row)
    numeric = [False, False, False, True, False, False] + [True] * (len(columns) - 6)
    return Table(caption, columns, rows, numeric)


# ------------------------------------------------------------------------------------------ permutations


def permutations_section(results: ResultsFile, header: FileHeader, out_dir: Path, top: int) -> Section:
    title = "Permutation thresholds"
    missing = _unavailable(title, header, "permutations", "genome-wide thresholds")
    if missing:
        return missing
    present = present_datasets(results, "permutations")
    traits = results.read("permutations/trait_names")
    alphas = read_optional(results, "permutations", "alphas", present)
    section = Section(title)
    if alphas is None:
        section.notes.append("The permutations stage stored no significance levels (alphas).")
        return section
    n_permutations = None
    if "permutation_ids" in present:
        n_permutations = int(results.read("permutations/permutation_ids").size)
    for which, label in (("1d", "1D (main effect)"), ("2d", "2D (epistatic)")):
        stored = read_optional(results, "permutations", f"threshold_{which}", present)
        if stored is None:
            continue
        rows = [[str(trait)] + [_fixed(stored[a, t], 2) for a in range(alphas.size)] for t, trait in enumerate(traits)]
        count = f" from {n_permutations} permutations" if n_permutations else ""
        section.tables.append(Table(f"Genome-wide {label} LOD thresholds{count}", ["trait"] +
                                    [f"{100 * a:g}%" for a in alphas], rows, [False] + [True] * alphas.size))
    if {"threshold_1d_autosomes", "threshold_1d_x", "x_permutation_ids"} <= present:  # permutations.x_specific
        autosomes, x = results.read("permutations/threshold_1d_autosomes"), results.read("permutations/threshold_1d_x")
        n_x = int(results.read("permutations/x_permutation_ids").size)
        rows = [[str(trait)] + [_fixed(part[a, t], 2) for a in range(alphas.size) for part in (autosomes, x)]
                for t, trait in enumerate(traits)]
        section.tables.append(Table(
            f"X-specific 1D LOD thresholds (R/qtl perm.Xsp): autosomes from {n_permutations} permutations, the X "
            f"from {n_x}; each genome-wide level split by chromosome lengths",
            ["trait"] + [f"{part} {100 * a:g}%" for a in alphas for part in ("autosomes", "X")], rows,
            [False] + [True] * (2 * alphas.size)))
    return section


SECTION_BUILDERS = (varcomp_section, scan1d_section, scan2d_section, permutations_section)
