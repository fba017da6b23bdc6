"""The SEM's EDN from the eQTL room's stored results (stage ``sem-edn``, ``qtlhpc.methods.sem.inputs``).

A 12-gene haploid cross is simulated with planted cis, cis-trans and trans effects and written to files; the
eQTL stages (cross-eqtl, cross-trans) run first through the CLI, then sem-edn.  Checked: the EDN's gene edges
are the planted regulator -> target pairs, the planted cis genes have an eQTL edge from a marker next to their
locus, the summary identities of spec B2.3, the required pairs are connected (networkx), the stored network is
the one the Python API builds from the same datasets, imputation by hand, and bad or missing inputs are named.
"""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

from qtlhpc.errors import InputError
from qtlhpc.io.cross import Cross
from qtlhpc.io.writers import write_map, write_matrix_tsv, write_rqtl_csv
from qtlhpc.methods.eqtl.simulate import CrossDesign, simulate_cross
from qtlhpc.methods.sem import inputs as I
from qtlhpc.store import open_results

DESIGN = CrossDesign(n_individuals=100, n_markers=40, n_genes=12, chromosome_lengths_bp=(600_000,) * 2,
                     n_cis=4, n_cis_trans_regulators=2, targets_per_cis_trans=2, n_trans_regulators=1,
                     targets_per_trans=2, noise_sd=0.5)
SIM_SEED = 3
FILES = ("cross.csv", "expression.tsv", "genes.tsv", "markers_bp.tsv")


def simulated():
    return simulate_cross(DESIGN, seed=SIM_SEED)


def write_inputs(sim, folder):
    individuals = np.array([f"seg{i + 1}" for i in range(DESIGN.n_individuals)])
    markers = np.array([f"m{k + 1}" for k in range(DESIGN.n_markers)])
    genes = np.array([f"g{k + 1}" for k in range(DESIGN.n_genes)])
    codes = np.where(np.isnan(sim.genotypes), 0, sim.genotypes + 1).astype(np.int8)
    cross = Cross("riself", individuals, markers, sim.marker_chromosome.astype(str), sim.marker_position_cM, codes)
    write_rqtl_csv(cross, folder / "cross.csv")
    write_matrix_tsv(folder / "expression.tsv", individuals, genes, sim.expression.T)
    starts = np.round(sim.gene_position_bp).astype(np.int64)
    lines = ["gene_id\tchromosome\tstart\tend\tstrand"]
    lines += [f"{g}\t{c}\t{s}\t{s}\t+" for g, c, s in zip(genes, sim.gene_chromosome, starts)]
    (folder / "genes.tsv").write_text("\n".join(lines) + "\n")
    write_map(folder / "markers_bp.tsv", markers, sim.marker_chromosome.astype(str), sim.marker_position_bp)


def write_config(folder, search="", edn="", slurm="", sources=None, parallel_io="auto"):
    """The run's files (symlinked from ``sources`` when given) and its config; returns the config path."""
    if sources is None:
        write_inputs(simulated(), folder)
    else:
        for name in FILES:
            (folder / name).symlink_to(sources / name)
    config = folder / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = 11
progress = false
parallel_io = "{parallel_io}"

[input]
format = "rqtl-csv"
cross_type = "riself"
file = "cross.csv"

[expression]
format = "tsv"
file = "expression.tsv"
annotation = "genes.tsv"

[cross_map]
marker_positions = "markers_bp.tsv"

[cross_eqtl]
clusters = 4
restarts = 3

[cross_trans]
regulator_block = 4
fdr = 0.05

[sem_edn]
{edn}

[sem_search]
{search}
{slurm}
""")
    return config


def qtlhpc(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


EDN_NAMES = ("gene_rows", "gene_ids", "eqtl_markers", "eqtl_names", "edge_tail", "edge_head", "edge_is_eqtl",
             "edge_kind", "cis_group_edge", "cis_group", "required_eqtl", "required_gene", "summary_names",
             "summary", "expression", "genotypes")


def stored_edn(path):
    with open_results(path) as results:
        return {name: results.read(f"sem-edn/{name}") for name in EDN_NAMES}


@pytest.fixture(scope="module")
def sim():
    return simulated()


@pytest.fixture(scope="module")
def edn_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sem-edn")
    config = write_config(folder)
    qtlhpc("run", "eqtl-cross", config)
    qtlhpc("run", "sem-edn", config)
    return config, stored_edn(folder / "results.h5")


def global_edges(edn):
    rows, markers = edn["gene_rows"], edn["eqtl_markers"]
    gene = {(int(rows[t]), int(rows[h])) for t, h, q in zip(edn["edge_tail"], edn["edge_head"], edn["edge_is_eqtl"])
            if not q}
    qtl = {(int(markers[x]), int(rows[h])) for x, h, q in zip(edn["edge_tail"], edn["edge_head"], edn["edge_is_eqtl"])
           if q}
    return gene, qtl


def test_edn_gene_edges_are_the_planted_pairs(sim, edn_run):
    _, edn = edn_run
    gene, qtl = global_edges(edn)
    planted = sim.truth.cis_trans_pairs | sim.truth.trans_pairs
    assert len(planted) == 6
    assert gene == planted
    # every planted cis gene has an eQTL edge from a marker within 150 kb (5 markers) of its locus
    for g in sim.truth.cis_genes:
        found = [m for m, h in qtl if h == g]
        assert found, g
        assert min(abs(sim.marker_position_bp[m] - sim.gene_position_bp[g]) for m in found
                   if sim.marker_chromosome[m] == sim.gene_chromosome[g]) < 150_000
    # a trans regulator's locus reaches its targets through an eQTL edge of the regulator's marker
    for r, t in sim.truth.trans_pairs:
        assert any(h == t for m, h in qtl), (r, t)


def test_summary_identities_and_kinds(edn_run):
    _, edn = edn_run
    s = dict(zip(edn["summary_names"].astype(str).tolist(), edn["summary"].tolist()))
    assert tuple(edn["summary_names"].astype(str)) == I.SUMMARY_NAMES
    gene, qtl = global_edges(edn)
    regulators, targets = {r for r, _ in gene}, {t for _, t in gene}
    assert s["regulators"] == len(regulators) and s["targets"] == len(targets)
    assert s["both"] == len(regulators & targets)
    assert s["gene_nodes"] == s["regulators"] + s["targets"] - s["both"]
    assert s["isolated_genes"] == s["genes"] - s["gene_nodes"] and s["genes"] == DESIGN.n_genes
    assert s["gene_edges"] == len(gene) and s["qtl_edges"] == len(qtl)
    assert s["sem_genes"] == edn["gene_rows"].size == len({h for _, h in gene | qtl} | regulators)
    assert s["eqtl_nodes"] == edn["eqtl_markers"].size and s["cis_groups"] == np.unique(edn["cis_group"]).size
    assert s["required_pairs"] == edn["required_gene"].size > 0
    assert s["trans_pairs_kept"] <= s["trans_pairs"] and s["imputed_genotypes"] == 0
    kinds = set("+".join(edn["edge_kind"].astype(str)).split("+"))
    assert {"cis", "cis-trans", "trans"} <= kinds <= {"cis", "cis-trans", "trans", "trans-in-region"}
    # cis groups hold eQTL edges only; gene edges come first
    d_gene = int((~edn["edge_is_eqtl"]).sum())
    assert not edn["edge_is_eqtl"][:d_gene].any() and edn["edge_is_eqtl"][d_gene:].all()
    assert (edn["cis_group_edge"] >= d_gene).all()


def test_required_pairs_have_paths_and_data_are_aligned(sim, edn_run):
    config, edn = edn_run
    net = I.network_from_arrays(edn["gene_rows"].size, edn["eqtl_markers"].size, edn)
    graph = nx.DiGraph()
    graph.add_edges_from((f"g{t}", f"g{h}") for t, h in net.gene_edges)
    graph.add_edges_from((f"q{x}", f"g{h}") for x, h in net.qtl_edges)
    for x, t in net.required:
        assert graph.has_node(f"q{x}") and nx.has_path(graph, f"q{x}", f"g{t}"), (x, t)
    # Y and X are the expression rows and marker columns, in sample order
    with open_results(config.parent / "results.h5") as results:
        values = results.read("expression/values")
    assert np.array_equal(edn["expression"], values[edn["gene_rows"]].T)
    assert np.array_equal(edn["genotypes"], sim.genotypes[:, edn["eqtl_markers"]])
    assert edn["gene_ids"].astype(str).tolist() == [f"g{k + 1}" for k in edn["gene_rows"]]
    assert edn["eqtl_names"].astype(str).tolist() == [f"m{k + 1}" for k in edn["eqtl_markers"]]


def test_stage_equals_the_api_on_the_same_datasets(sim, edn_run):
    config, edn = edn_run
    with open_results(config.parent / "results.h5") as results:
        names = ("marker_chromosomes", "closest_marker") + tuple(n for s in I.REGION_DATASETS.values() for n in s)
        cross_eqtl = {name: results.read(f"cross-eqtl/{name}") for name in names}
        trans = {name: results.read(f"cross-trans/{name}") for name in I.TRANS_DATASETS}
        values = results.read("expression/values")
        chromosomes = results.read("expression/gene_chromosomes").astype(str)
        starts = results.read("expression/gene_starts")
    api = I.build_inputs(values, sim.genotypes, cross_eqtl, chromosomes, starts, trans_pairs=trans)
    for name, value in api.edge_arrays().items():
        assert np.array_equal(value, edn[name]), name
    assert np.array_equal(api.genes, edn["gene_rows"]) and np.array_equal(api.markers, edn["eqtl_markers"])
    # without the trans pairs, the trans edges go
    regions_only = I.build_inputs(values, sim.genotypes, cross_eqtl, chromosomes, starts, trans_pairs=None)
    assert regions_only.summary["trans_pairs"] == 0
    assert not any("trans" in k.split("+") for k in regions_only.gene_kinds + regions_only.qtl_kinds)


def test_imputation_by_hand():
    M = np.array([[0.0, 1.0], [np.nan, 1.0], [1.0, np.nan], [1.0, 0.0]])
    filled, n = I.impute_genotypes(M)
    assert n == 2
    assert filled[1, 0] == pytest.approx(2 / 3) and filled[2, 1] == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="marker column 1"):
        I.impute_genotypes(np.array([[0.0, np.nan], [1.0, np.nan]]))


def test_bad_inputs_are_named(sim, edn_run):
    config, _ = edn_run
    with open_results(config.parent / "results.h5") as results:
        names = ("marker_chromosomes", "closest_marker") + tuple(n for s in I.REGION_DATASETS.values() for n in s)
        cross_eqtl = {name: results.read(f"cross-eqtl/{name}") for name in names}
        values = results.read("expression/values")
        chromosomes = results.read("expression/gene_chromosomes").astype(str)
        starts = results.read("expression/gene_starts")
    partial = dict(cross_eqtl)
    del partial["cis_trans_gene"]
    with pytest.raises(InputError, match="cross-eqtl/cis_trans_gene"):
        I.build_inputs(values, sim.genotypes, partial, chromosomes, starts)
    # PC regions only do not read the cis datasets
    I.build_inputs(values, sim.genotypes, partial, chromosomes, starts, regions="pc")
    with pytest.raises(InputError, match="cross-trans/pair_target"):
        I.build_inputs(values, sim.genotypes, cross_eqtl, chromosomes, starts,
                       trans_pairs={"pair_regulator": np.zeros(1, dtype=np.int64)})
    holes = values.copy()
    holes[3, 7] = np.nan
    with pytest.raises(InputError, match="gene 'g4' has no value for sample 's8'"):
        I.build_inputs(holes, sim.genotypes, cross_eqtl, chromosomes, starts, gene_ids=[f"g{k + 1}" for k in
                                                                                        range(12)],
                       sample_ids=[f"s{k + 1}" for k in range(100)])
    with pytest.raises(InputError, match="100 samples"):
        I.build_inputs(values, sim.genotypes[:50], cross_eqtl, chromosomes, starts)


def test_missing_eqtl_stage_is_named(tmp_path):
    config = write_config(tmp_path)
    qtlhpc("run", "expression", config)
    qtlhpc("run", "cross-eqtl", config)
    proc = qtlhpc("run", "sem-edn", config, check=False)
    assert proc.returncode != 0 and "'cross-trans'" in proc.stderr and "Traceback" not in proc.stderr
    # with trans = false the regions alone make the EDN
    text = config.read_text().replace("[sem_edn]\n", "[sem_edn]\ntrans = false\n")
    config.write_text(text)
    qtlhpc("run", "sem-edn", config)
    edn = stored_edn(tmp_path / "results.h5")
    s = dict(zip(edn["summary_names"].astype(str).tolist(), edn["summary"].tolist()))
    assert s["trans_pairs"] == 0 and s["gene_edges"] >= 4


def test_a_required_pair_the_edn_cannot_connect_is_dropped_and_counted():
    """A trans-affected target whose in-region regulator search keeps nothing has a required (eQTL, target) pair
    and no edge into it: it is dropped (else no edge could ever be removed), counted, and the search runs."""
    from qtlhpc.methods.sem import search as S

    rng = np.random.default_rng(4)
    N = 200
    x = rng.integers(0, 2, N).astype(float)
    y_cis = x + 0.3 * rng.standard_normal(N)
    y_target = x + 0.3 * rng.standard_normal(N)      # the locus acts on it, not through the cis gene
    y_other = rng.standard_normal(N)
    values = np.vstack([y_cis, y_target, y_other])
    M = np.column_stack([x, rng.integers(0, 2, N).astype(float)])
    empty = np.zeros(0, dtype=np.int64)
    cross_eqtl = {"marker_chromosomes": np.array(["1", "1"]), "closest_marker": np.array([0, 1, 1]),
                  "cis_region_peak": np.array([0]), "cis_region_start_bp": np.array([0.0]),
                  "cis_region_end_bp": np.array([1000.0]), "cis_eqtl_gene": np.array([0]),
                  "cis_eqtl_region": np.array([0]), "cis_trans_region": np.array([0]), "cis_trans_gene": np.array([1]),
                  "pc_region_peak": empty, "pc_region_start_bp": np.zeros(0), "pc_region_end_bp": np.zeros(0),
                  "pc_target_region": empty, "pc_target_gene": empty}
    found = I.build_inputs(values, M, cross_eqtl, np.array(["1", "1", "1"]), np.array([100.0, 5000.0, 9000.0]))
    assert found.summary["required_unreachable"] == 1 and found.summary["required_pairs"] == 0
    net = found.network
    assert net.gene_edges.size == 0 and net.qtl_edges.tolist() == [[0, 0]]
    assert found.genes.tolist() == [0] and found.markers.tolist() == [0]
    graph = nx.DiGraph([(f"q{a}", f"g{b}") for a, b in net.qtl_edges])
    assert not graph.has_node("g1")      # the target is not reachable from the eQTL: no path to require
    result = S.search(found.Y, found.X, net, S.SearchOptions(delta=2.0))
    assert result.best.mask.tolist() == [True]   # the cis group's one edge stays
