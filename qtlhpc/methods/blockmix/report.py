"""The block-mixture sections of ``qtlhpc report`` (method ``blockmix``): the CL-BIC curve over K (the paper's
Fig. 1), the genome profile of test (i) with the permutation threshold (Fig. 2), the cluster x genotype heatmap
of the means at the highest peak (Fig. 4/6), and the per-eQTL count of affected clusters from test (ii)
(Fig. 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtlhpc.report.figures import CHROMOSOME_COLOURS, _new_figure, _save
from qtlhpc.report.html import FigureLink, Section, Table


def plot_bic_curve(path: Path, k_grid, bic, k_hat) -> Path:
    figure = _new_figure(5, 3.4)
    axis = figure.add_subplot()
    finite = np.isfinite(bic)
    axis.plot(k_grid[finite], bic[finite], marker="o", color=CHROMOSOME_COLOURS[1])
    axis.axvline(k_hat, color="#c0392b", linestyle="--", label=f"K = {k_hat}")
    axis.legend(loc="upper right", frameon=False)
    axis.set_xlabel("number of gene clusters K")
    axis.set_ylabel("composite-likelihood BIC")
    axis.set_title("Choice of K (smallest CL-BIC over the starts)")
    return _save(figure, path)


def plot_profile(path: Path, chromosomes, positions, lr, threshold, alpha) -> Path:
    figure = _new_figure(10, 3.4)
    axis = figure.add_subplot()
    offset, ticks, labels = 0.0, [], []
    for index, name in enumerate(dict.fromkeys(chromosomes.tolist())):
        rows = chromosomes == name
        x = offset + positions[rows]
        axis.plot(x, lr[rows], color=CHROMOSOME_COLOURS[index % 2], linewidth=1.2)
        span = float(positions[rows].max() - positions[rows].min()) or 1.0
        ticks.append(offset + span / 2)
        labels.append(str(name))
        offset = x.max() + 0.05 * span + 1
    if np.isfinite(threshold):
        axis.axhline(threshold, color="#c0392b", linestyle="--", label=f"permutation threshold, alpha = {alpha:g}")
        axis.legend(loc="upper right", frameon=False)
    axis.set_xticks(ticks, labels)
    axis.set_xlabel("chromosome (cM)")
    axis.set_ylabel("composite LR, test (i)")
    axis.set_title("Genome scan for eQTL that shape gene clusters")
    return _save(figure, path)


def plot_heatmap(path: Path, mu: np.ndarray, states, title: str) -> Path:
    K = mu.shape[1]
    figure = _new_figure(min(2 + 0.25 * K, 12), 1.2 + 0.5 * mu.shape[0])
    axis = figure.add_subplot()
    image = axis.imshow(mu, aspect="auto", cmap="RdBu_r", vmin=-np.abs(mu).max(), vmax=np.abs(mu).max())
    axis.set_yticks(range(mu.shape[0]), [str(s) for s in states])
    axis.set_xticks(range(K), [str(k + 1) for k in range(K)], fontsize=7 if K > 20 else 9)
    axis.set_xlabel("gene cluster")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, label="mean expression")
    return _save(figure, path)


def plot_affected(path: Path, labels, counts, n_clusters: int) -> Path:
    figure = _new_figure(max(4, 0.4 * len(labels) + 2), 3.4)
    axis = figure.add_subplot()
    axis.bar(range(len(labels)), counts, color=CHROMOSOME_COLOURS[1])
    axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    axis.set_ylim(0, n_clusters)
    axis.set_ylabel(f"clusters affected (of {n_clusters})")
    axis.set_title("Pleiotropy: clusters with a significant test (ii) per eQTL")
    return _save(figure, path)


def blockmix_section(results, header, out_dir: Path, top: int) -> Section:
    title = "Block-mixture eQTL clustering (Wang et al. 2016)"
    notes, figures, tables = [], [], []
    if not header.stage("blockmix-select").is_complete:
        return Section(title, notes=[header.stage("blockmix-select").explain() + " No block-mixture figures."])
    k_grid, bic = results.read("blockmix-select/k_grid"), results.read("blockmix-select/bic_curve")
    k_hat = int(results.read("blockmix-select/k_hat"))
    figures.append(FigureLink(plot_bic_curve(out_dir / "blockmix_bic.png", k_grid, bic, k_hat).name,
                              "Composite-likelihood BIC of the best start of each K (Fig. 1 of the paper)"))
    notes.append(f"K-hat = {k_hat} gene clusters over K = {int(k_grid[0])}..{int(k_grid[-1])}.")
    if not header.stage("blockmix-scan").is_complete:
        notes.append(header.stage("blockmix-scan").explain())
        return Section(title, notes=notes, figures=figures)
    lr = results.read("blockmix-scan/lr")
    names = results.read("genoprob/position_names").astype(str)
    chromosomes = results.read("genoprob/position_chromosomes").astype(str)
    positions = results.read("genoprob/positions_cM")
    states = results.read("genoprob/genotype_states").astype(str)
    threshold, alpha = np.nan, np.nan
    if header.stage("blockmix-permutations").is_complete:
        levels = results.read("blockmix-permutations/alphas")
        values = results.read("blockmix-permutations/thresholds")
        pick = int(np.argmin(np.abs(levels - 0.05)))
        threshold, alpha = float(values[pick]), float(levels[pick])
    else:
        notes.append(header.stage("blockmix-permutations").explain() + " The profile has no threshold.")
    figures.append(FigureLink(plot_profile(out_dir / "blockmix_profile.png", chromosomes, positions, lr, threshold,
                                           alpha).name,
                              "LR of test (i) at every position with the genome-wide permutation threshold (Fig. 2)"))
    peak = int(np.argmax(lr))
    mu = results.read("blockmix-scan/mu", (slice(peak, peak + 1),))[0]
    figures.append(FigureLink(plot_heatmap(out_dir / "blockmix_heatmap.png", mu, states,
                                           f"Cluster means by genotype at {names[peak]} "
                                           f"({chromosomes[peak]}, {positions[peak]:.1f} cM)").name,
                              "Estimated mean expression of each gene cluster for each genotype at the highest peak"))
    order = np.argsort(-lr, kind="stable")[:top]
    rows = [(names[p], chromosomes[p], f"{positions[p]:.2f}", f"{lr[p]:.4g}",
             "yes" if np.isfinite(threshold) and lr[p] >= threshold else "no") for p in order]
    tables.append(Table(f"The {len(rows)} largest LR of test (i)", ("position", "chromosome", "cM", "LR",
                                                                     "above threshold"), rows,
                        (False, False, True, True, False)))
    if header.stage("blockmix-tests").is_complete:
        peaks = results.read("blockmix-tests/peak_position")
        affected = results.read("blockmix-tests/n_affected")
        if len(peaks):
            labels = [f"{chromosomes[p]}:{names[p]}" for p in peaks]
            figures.append(FigureLink(plot_affected(out_dir / "blockmix_affected.png", labels, affected,
                                                    mu.shape[1]).name,
                                      "Number of gene clusters each significant eQTL affects (test (ii), Fig. 3)"))
            tables.append(Table("Clusters affected per tested eQTL", ("position", "LR", "permutation p",
                                                                       "clusters affected"),
                                [(labels[k], f"{results.read('blockmix-tests/peak_lr')[k]:.4g}",
                                  f"{results.read('blockmix-tests/peak_pvalue')[k]:.3g}", str(int(affected[k])))
                                 for k in range(len(peaks))], (False, True, True, True)))
        else:
            notes.append("No position reached the permutation threshold: tests (ii)-(iv) were not run.")
    return Section(title, notes=notes, figures=figures, tables=tables)


SECTION_BUILDERS = (blockmix_section,)
