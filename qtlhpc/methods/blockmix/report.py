"""The block-mixture sections of ``qtlhpc report`` (method ``blockmix``): the CL-BIC curve over K (the paper's
Fig. 1), the genome profile of test (i) with the permutation threshold (Fig. 2), the cluster x genotype heatmap
of the means at the highest peak (Fig. 4/6), the per-eQTL count of affected clusters from test (ii)
(Fig. 3; chi-square and bootstrap), and at the highest tested eQTL the distances between cluster means by genotype
(Fig. 6), the cluster networks by genotype (Fig. 7) and the pairs whose networks differ most."""

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


def _circle(K: int) -> np.ndarray:
    angle = np.pi / 2 - 2 * np.pi * np.arange(K) / K
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def plot_networks(path: Path, corr: np.ndarray, corr_all: np.ndarray, states, edge: float, title: str) -> Path:
    """Cluster co-expression networks (the paper's Fig. 7): one panel for all individuals, one per genotype;
    nodes on a circle, an edge where |corr| >= ``edge`` (red positive, blue negative, width by |corr|)."""
    panels = [("all individuals", corr_all)] + [(f"genotype {s}", corr[q]) for q, s in enumerate(states)]
    K = corr_all.shape[0]
    xy = _circle(K)
    figure = _new_figure(3.2 * len(panels), 3.6)
    for index, (name, matrix) in enumerate(panels):
        axis = figure.add_subplot(1, len(panels), index + 1)
        count = 0
        for a in range(K):
            for b in range(a + 1, K):
                value = matrix[a, b]
                if np.isfinite(value) and abs(value) >= edge:
                    count += 1
                    axis.plot(xy[[a, b], 0], xy[[a, b], 1], color="#c0392b" if value > 0 else "#2471a3",
                              linewidth=0.5 + 2.5 * (abs(value) - edge) / max(1 - edge, 1e-9), alpha=0.8)
        axis.scatter(xy[:, 0], xy[:, 1], s=160 if K <= 20 else 40, color="#f4f6f7", edgecolor="#34495e", zorder=3)
        for k in range(K):
            axis.text(xy[k, 0], xy[k, 1], str(k + 1), ha="center", va="center", fontsize=7 if K > 20 else 8,
                      zorder=4)
        axis.set_title(f"{name}: {count} edges", fontsize=9)
        axis.set_xlim(-1.2, 1.2)
        axis.set_ylim(-1.2, 1.2)
        axis.set_aspect("equal")
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def plot_distances(path: Path, mu: np.ndarray, states, title: str) -> Path:
    """``|mu_ql - mu_ql'|`` per genotype (the paper's Fig. 6)."""
    distances = np.abs(mu[:, :, None] - mu[:, None, :])
    Q, K = mu.shape
    figure = _new_figure(3.4 * Q + 0.8, 3.4)
    top = float(np.nanmax(distances)) or 1.0
    image = None
    for q in range(Q):
        axis = figure.add_subplot(1, Q, q + 1)
        image = axis.imshow(distances[q], cmap="viridis_r", vmin=0.0, vmax=top)
        ticks = range(0, K, max(1, K // 10))
        axis.set_xticks(list(ticks), [str(k + 1) for k in ticks], fontsize=7)
        axis.set_yticks(list(ticks), [str(k + 1) for k in ticks], fontsize=7)
        axis.set_title(f"genotype {states[q]}", fontsize=9)
    figure.colorbar(image, ax=figure.axes, label="|mean difference| between clusters")
    figure.suptitle(title, fontsize=10)
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
            replicates = results.read("blockmix-tests/bootstrap_lr").shape[-1]
            boot_affected = results.read("blockmix-tests/n_affected_bootstrap")
            tables.append(Table("Clusters affected per tested eQTL (test (ii), Bonferroni over the clusters)",
                                ("position", "LR", "permutation p", "clusters affected (chi-square)",
                                 f"clusters affected (bootstrap, B = {replicates})"),
                                [(labels[k], f"{results.read('blockmix-tests/peak_lr')[k]:.4g}",
                                  f"{results.read('blockmix-tests/peak_pvalue')[k]:.3g}", str(int(affected[k])),
                                  str(int(boot_affected[k])) if replicates else "-")
                                 for k in range(len(peaks))], (False, True, True, True, True)))
            if not replicates:
                notes.append("Tests (ii)-(iv) use the nominal chi-square reference only ([blockmix_tests] "
                             "bootstrap = 0); it is anti-conservative for a composite likelihood ratio.")
            network_parts(results, peaks, labels, states, out_dir, figures, tables, top)
        else:
            notes.append("No position reached the permutation threshold: tests (ii)-(iv) were not run.")
        spot_label = results.read("blockmix-tests/spot_label").astype(str)
        if len(spot_label):
            first, last = results.read("blockmix-tests/spot_first"), results.read("blockmix-tests/spot_last")
            best, count = results.read("blockmix-tests/spot_best"), results.read("blockmix-tests/spot_count")
            tables.append(Table("Spots: significant positions grouped per chromosome (gaps of at most one position)",
                                ("spot", "from", "to", "significant positions", "best position", "LR"),
                                [(spot_label[s], f"{names[first[s]]} ({positions[first[s]]:.1f} cM)",
                                  f"{names[last[s]]} ({positions[last[s]]:.1f} cM)", str(int(count[s])),
                                  names[best[s]], f"{lr[best[s]]:.4g}") for s in range(len(spot_label))],
                                (False, False, False, True, False, True)))
    return Section(title, notes=notes, figures=figures, tables=tables)


def network_parts(results, peaks, labels, states, out_dir: Path, figures, tables, top: int) -> None:
    """Figs. 6-7 at the first tested peak (the largest LR) and the pairs whose networks differ most."""
    corr = results.read("blockmix-tests/network_corr", (slice(0, 1),))[0]
    corr_all = results.read("blockmix-tests/network_corr_all", (slice(0, 1),))[0]
    edge = float(results.read("blockmix-tests/network_edge"))
    mu = results.read("blockmix-scan/mu", (slice(int(peaks[0]), int(peaks[0]) + 1),))[0]
    figures.append(FigureLink(plot_distances(out_dir / "blockmix_distances.png", mu, states,
                                             f"Distances between cluster means at {labels[0]}").name,
                              "|mu_ql - mu_ql'| for every genotype at the highest tested eQTL (Fig. 6)"))
    figures.append(FigureLink(plot_networks(out_dir / "blockmix_networks.png", corr, corr_all, states, edge,
                                            f"Cluster networks at {labels[0]} (|corr| >= {edge:g})").name,
                              "Correlation networks of the cluster scores, all individuals and by genotype "
                              "(Fig. 7)"))
    pvalue = results.read("blockmix-tests/network_difference_pvalue")
    statistic = results.read("blockmix-tests/network_difference")
    K = corr.shape[-1]
    rows = []
    for k in range(len(peaks)):
        upper = np.triu_indices(K, 1)
        order = np.argsort(pvalue[k][upper], kind="stable")[:top]
        for index in order:
            a, b = upper[0][index], upper[1][index]
            values = results.read("blockmix-tests/network_corr", (slice(k, k + 1),))[0][:, a, b]
            rows.append((labels[k], f"{a + 1}-{b + 1}", " / ".join(f"{v:.2f}" for v in values),
                         f"{statistic[k, a, b]:.3g}", f"{pvalue[k, a, b]:.3g}"))
        if k == 2:
            break
    tables.append(Table("Cluster pairs whose correlation differs most between genotypes (our homogeneity test of "
                        "Fisher's z; at most 3 eQTL)", ("position", "clusters",
                                                         "correlation by genotype (" + " / ".join(states) + ")",
                                                         "statistic", "p (asymptotic)"),
                        rows, (False, False, False, True, True)))


SECTION_BUILDERS = (blockmix_section,)
