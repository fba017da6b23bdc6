"""The report's helpers on hand-made inputs: gene order by strongest fuzzy cluster, binned heatmap of a sparse F."""

import numpy as np
import scipy.sparse as sp

from qtlhpc.methods.cocluster.report import binned_matrix, gene_order


def test_gene_order_groups_genes_by_their_strongest_cluster():
    genes = np.array([0, 1, 2, 3, 1, 4])
    clusters = np.array([1, 0, 1, 0, 1, 0])
    values = np.array([0.9, 0.4, 0.5, 1.0, 0.6, 0.2])
    # gene 1: 0.4 in cluster 0, 0.6 in cluster 1 -> cluster 1; gene 5 in no cluster -> last
    order = gene_order(6, genes, clusters, values)
    assert order.tolist() == [3, 4, 0, 1, 2, 5]


def test_binned_matrix_is_the_block_mean_of_the_reordered_matrix():
    rng = np.random.default_rng(0)
    dense = rng.random((7, 7))
    dense = (dense + dense.T) / 2
    dense[dense < 0.4] = 0
    order = rng.permutation(7)
    binned = binned_matrix(sp.csr_matrix(dense), order, bins=3)
    reordered = dense[order][:, order]
    edges = (np.arange(7) * 3) // 7
    for a in range(3):
        for b in range(3):
            np.testing.assert_allclose(binned[a, b], reordered[edges == a][:, edges == b].mean())
    np.testing.assert_allclose(binned_matrix(sp.csr_matrix(dense), order, bins=50), reordered)
