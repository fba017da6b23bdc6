"""Datasets of the SEM stages (Liu, de la Fuente & Hoeschele 2008): ``sem-edn`` (the encompassing directed
network and the search's data) and ``sem-search`` (per search path, written in path blocks; then the models
over all paths, the best model's coefficients and the inclusion frequencies)."""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("sem_gene", "a gene of the SEM (a node of the EDN), in expression/gene_ids order")
declare_dimension("sem_eqtl", "an eQTL node of the EDN (a marker), in marker order")
declare_dimension("sem_edge", "an EDN edge: gene -> gene edges first, then eQTL -> gene edges (the search's ids)")
declare_dimension("sem_cis_edge", "a member edge of a cis group (an eQTL's cis edges, one of which must stay)")
declare_dimension("sem_required", "a mapped (eQTL, gene) association that needs a directed path in every model")
declare_dimension("sem_count", "an EDN summary count")
declare_dimension("sem_path", "a search path (path 0: canonical edge order; in an array task's file, its own)")
declare_dimension("sem_slot", "a stored accepted model of one path (best IC first; sem_search.keep_accepted)")
declare_dimension("sem_model", "a distinct accepted model over all paths, best IC first")
declare_dimension("sem_guard", "a guard rail of the search (code 1, 2, ... of path_guard)")

STAGE = "sem-edn"
declare(STAGE, "gene_rows", ("sem_gene",), "int64", "", "row of the gene in expression/values")
declare(STAGE, "gene_ids", ("sem_gene",), "str", "", "gene identifier", labels_for="sem_gene")
declare(STAGE, "eqtl_markers", ("sem_eqtl",), "int64", "", "marker of the eQTL node (column of the [input] cross)")
declare(STAGE, "eqtl_names", ("sem_eqtl",), "str", "", "marker name of the eQTL node", labels_for="sem_eqtl")
declare(STAGE, "edge_tail", ("sem_edge",), "int64", "", "tail: a sem_gene (gene edge) or a sem_eqtl (eQTL edge)")
declare(STAGE, "edge_head", ("sem_edge",), "int64", "", "head: a sem_gene")
declare(STAGE, "edge_is_eqtl", ("sem_edge",), "bool", "", "true for an eQTL -> gene edge")
declare(STAGE, "edge_kind", ("sem_edge",), "str", "",
        "the steps that gave the edge, '+'-joined: cis, cis-trans, trans-in-region, trans")
declare(STAGE, "cis_group_edge", ("sem_cis_edge",), "int64", "", "edge id of the member")
declare(STAGE, "cis_group", ("sem_cis_edge",), "int64", "", "cis group of the member (one per eQTL with cis genes)")
declare(STAGE, "required_eqtl", ("sem_required",), "int64", "", "the eQTL node (sem_eqtl)")
declare(STAGE, "required_gene", ("sem_required",), "int64", "", "the target gene (sem_gene)")
declare(STAGE, "summary_names", ("sem_count",), "str", "", "name of the count (see docs/sem.md)",
        labels_for="sem_count")
declare(STAGE, "summary", ("sem_count",), "int64", "", "EDN summary counts: regulators, targets, both, isolated, ...")
declare(STAGE, "expression", ("sample", "sem_gene"), "float64", "expression", "Y of the search (not centred)")
declare(STAGE, "genotypes", ("sample", "sem_eqtl"), "float64", "",
        "X of the search: 0/1 genotypes, missing ones as the marker's mean")

STAGE = "sem-search"
declare(STAGE, "paths", ("sem_path",), "int64", "", "path id of each row")
declare(STAGE, "path_n_accepted", ("sem_path",), "int64", "", "accepted models of the path (all, stored or not)")
declare(STAGE, "path_evaluations", ("sem_path",), "int64", "", "model evaluations (IC differences) of the path")
declare(STAGE, "path_models_visited", ("sem_path",), "int64", "", "models taken as M1 (down and up passes)")
declare(STAGE, "path_guard", ("sem_path",), "int64", "", "guard rail hit: 0 none, else a code of guard_names")
declare(STAGE, "path_edge_count", ("sem_path", "sem_edge"), "int64", "",
        "accepted models of the path that contain the edge")
declare(STAGE, "accepted_mask", ("sem_path", "sem_slot", "sem_edge"), "bool", "",
        "edges of the path's accepted models, best IC first (false in unused slots)")
declare(STAGE, "accepted_loglik", ("sem_path", "sem_slot"), "float64", "log-likelihood",
        "log-likelihood of the accepted model, Eq. (4) (NaN unused)")
declare(STAGE, "accepted_n_params", ("sem_path", "sem_slot"), "int64", "",
        "free parameters k = #B + #F + genes (-1 unused)")
declare(STAGE, "accepted_ic", ("sem_path", "sem_slot"), "float64", "", "BIC(delta) of the model (NaN unused)")
declare(STAGE, "guard_names", ("sem_guard",), "str", "", "guard rail of code 1, 2, ...", labels_for="sem_guard")
declare(STAGE, "delta", (), "float64", "", "the delta of BIC(delta) = -2 l + delta k log N (sem_search.delta)")
declare(STAGE, "t_ow", (), "float64", "", "Occam's window threshold T_ow used")
declare(STAGE, "seed", (), "int64", "", "seed of the paths")
declare(STAGE, "model_mask", ("sem_model", "sem_edge"), "bool", "", "edges of each distinct accepted model")
declare(STAGE, "model_loglik", ("sem_model",), "float64", "log-likelihood", "log-likelihood of the model")
declare(STAGE, "model_n_params", ("sem_model",), "int64", "", "free parameters of the model")
declare(STAGE, "model_ic", ("sem_model",), "float64", "", "BIC(delta) of the model")
declare(STAGE, "model_paths", ("sem_model",), "int64", "", "paths that accepted the model")
declare(STAGE, "inclusion_frequency", ("sem_edge",), "float64", "",
        "share of (path, accepted model) pairs whose model contains the edge")
declare(STAGE, "best_mask", ("sem_edge",), "bool", "", "edges of the best model (smallest BIC(delta))")
declare(STAGE, "best_coefficient", ("sem_edge",), "float64", "",
        "ML coefficient of the edge in the best model (B[head, tail] or F[head, eqtl]); NaN outside it")
declare(STAGE, "best_sigma2", ("sem_gene",), "float64", "expression^2", "residual variance of each gene")
declare(STAGE, "best_in_cycle", ("sem_edge",), "bool", "", "the edge lies on a cycle of the best model")
declare(STAGE, "best_under_identified", ("sem_gene",), "bool", "",
        "the gene's equation fails the order condition in the best model (fitted, flagged)")
declare(STAGE, "best_loglik", (), "float64", "log-likelihood", "log-likelihood of the best model (the search's)")
declare(STAGE, "best_ic", (), "float64", "", "BIC(delta) of the best model")
declare(STAGE, "best_n_params", (), "int64", "", "free parameters of the best model")
declare(STAGE, "best_fit_loglik", (), "float64", "log-likelihood",
        "log-likelihood of the refit that gave best_coefficient (2SLS, OLS and zero starts)")
