"""Planted co-clusters: the simulator's truth is recovered, and where conditions matter (many small gene clusters
whose conditions fall into a few blocks of equal mean) two-way clustering beats one-way, which finds far fewer
clusters ([J] §3.3, Fig. 5)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from qtlhpc.methods.cocluster.distributed import one_run
from qtlhpc.methods.cocluster.simulate import PlantedDesign, simulate


def test_simulator_plants_the_design():
    design = PlantedDesign(n_genes=60, n_conditions=12, n_clusters=4, condition_blocks=3, n_shared=5,
                           missing_rate=0.1)
    data = simulate(design, seed=2)
    assert data.expression.shape == (65, 12)
    assert np.bincount(data.gene_cluster[:60]).tolist() == [15] * 4
    assert (data.second_cluster[60:] != data.gene_cluster[60:]).all() and (data.second_cluster[:60] == -1).all()
    assert 0.05 < np.isnan(data.expression).mean() < 0.15
    again = simulate(design, seed=2)
    np.testing.assert_array_equal(np.nan_to_num(again.expression), np.nan_to_num(data.expression))
    # the cells of a planted co-cluster have the planted mean (within noise)
    block = data.expression[:15][:, data.condition_blocks[0] == 0]
    assert abs(np.nanmean(block) - data.means[0, 0]) < 4 * design.noise_sd / np.sqrt(np.isfinite(block).sum())


def test_two_way_beats_one_way_where_conditions_matter():
    design = PlantedDesign(n_genes=120, n_conditions=40, n_clusters=20, condition_blocks=2, mean_sd=1.0,
                           noise_sd=1.0)
    data = simulate(design, seed=3)
    found = {}
    for mode in ("two-way", "one-way"):
        runs = [one_run(data.expression, 5, run, n_iterations=30, burn_in=15, one_way=mode == "one-way")
                for run in range(3)]
        found[mode] = (np.mean([adjusted_rand_score(data.gene_cluster, r.gene_labels) for r in runs]),
                       np.mean([r.n_clusters[-1] for r in runs]))
    print("ARI, K:", found)
    assert found["two-way"][0] > found["one-way"][0] + 0.15
    assert found["two-way"][0] > 0.35
    assert found["one-way"][1] < 0.6 * found["two-way"][1]     # one-way finds far fewer clusters


def test_rho_between_averages_rises_with_the_number_of_runs():
    """[J] Fig. 2: rho between two disjoint averages of k runs approaches 1 as k grows (16 runs, k = 1..8)."""
    from qtlhpc.methods.cocluster.distributed import runs
    from qtlhpc.methods.cocluster.drivers.matrix import per_run_rows, rho_by_k

    data = simulate(PlantedDesign(n_genes=120, n_conditions=20, n_clusters=6, condition_blocks=2, mean_sd=0.8,
                                  noise_sd=1.0), seed=4)
    found = runs(data.expression, 3, range(16), None, n_iterations=20, burn_in=10)
    samples = np.array([found[r].samples for r in range(16)])
    table = rho_by_k(per_run_rows(samples, 0, 120, 64), 3, None)
    assert table.shape == (8, 8)
    assert [int(np.isfinite(row).sum()) for row in table] == [16 // (2 * k) for k in range(1, 9)]
    means = np.nanmean(table, axis=1)
    print("mean rho by k:", np.round(means, 3))
    assert means[0] < means[3] < means[7]
    assert means[7] > 0.85 and means[0] < 0.8
