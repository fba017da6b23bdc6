"""Datasets of the epistatic mapping stages (PEPIS model; Xu 2013, Zhang et al. 2016).

Stages: ``kinship`` (six kinship matrices and the genotype codes), ``varcomp`` (REML variance ratios),
``scan1d`` (main effects per locus), ``scan2d`` (epistatic effects per locus pair), ``permutations``
(genome-wide maxima under permuted phenotypes and the thresholds they give).
"""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("locus", "a locus of the epistatic model: a marker, or a genoprob grid position "
                  "(kinship.positions = grid; for Haley-Knott scans, every genoprob position)")
declare_dimension("component", "a variance component: the kinships of the background, then the residual",
                  as_columns=True)
declare_dimension("main_effect", "a main effect of one locus: a (additive), d (dominance)", as_columns=True)
declare_dimension("epistatic_effect", "an epistatic effect of a locus pair: aa, ad, da, dd", as_columns=True)
declare_dimension("alpha", "a genome-wide significance level", as_columns=True)
declare_dimension("hk2d_statistic", "a two-QTL LOD of R/qtl's scantwo: full, fv1, int, add, av1", as_columns=True)
declare_dimension("top_pair", "a reported marker pair (above the reporting threshold), strongest first")
declare_dimension("skipped_trait", "a trait the scan's model cannot be fitted to (left out of the scan's trait rows)")

# ------------------------------------------------------------------------------------------ kinship
K = "kinship"
declare(K, "kinship_names", ("kinship",), "str", "",
        "a, d, aa, ad, da, dd: additive, dominance and the four epistatic kinships", labels_for="kinship")
declare(K, "matrices", ("kinship", "kinship_row", "individual"), "float64", "",
        "kinship matrices, each divided by its scale (mean diagonal of the unscaled sum; Xu 2013): "
        "Ka = ZZ'/c, Kd = WW'/c, Kaa = sum_{k<l} (z_k*z_l)(z_k*z_l)'/c, Kad, Kda, Kdd likewise")
declare(K, "scale", ("kinship",), "float64", "",
        "the scaling constant of each kinship: the mean diagonal of the unscaled sum over markers or pairs")
declare(K, "loco_chromosomes", ("chromosome",), "str", "",
        "kinship.loco: the chromosome left out by each set of loco_matrices", labels_for="chromosome")
declare(K, "loco_matrices", ("chromosome", "kinship", "kinship_row", "individual"), "float64", "",
        "kinship.loco: the kinships from the loci of every chromosome but one, each scaled by its own mean diagonal")
declare(K, "loco_scale", ("chromosome", "kinship"), "float64", "",
        "kinship.loco: the scaling constant of each leave-one-chromosome-out kinship")
declare(K, "individual_ids", ("individual",), "str", "", "identifier of each individual", labels_for="individual")
declare(K, "locus_names", ("locus",), "str", "", "name of each locus (marker or pseudomarker)",
        labels_for="locus")
declare(K, "locus_chromosomes", ("locus",), "str", "", "chromosome of each locus")
declare(K, "locus_positions_cM", ("locus",), "float64", "cM", "map position of each locus")
declare(K, "additive_codes", ("individual", "locus"), "float64", "",
        "additive code Z: 1 (AA), 0 (AB), -1 (BB); with missing genotypes p_AA - p_BB; as given for PEPIS input")
declare(K, "dominance_codes", ("individual", "locus"), "float64", "",
        "dominance code W: 1 (AB), -1 (AA or BB); with missing genotypes p_AB - p_AA - p_BB")

# ------------------------------------------------------------------------------------------ varcomp
V = "varcomp"
declare(V, "trait_names", ("trait",), "str", "", "name of each trait analysed", labels_for="trait")
declare(V, "component_names", ("component",), "str", "",
        "variance components: the kinships of the background, then 'residual'", labels_for="component")
declare(V, "covariate_names", ("covariate",), "str", "", "fixed effects: 'intercept', then the covariates",
        labels_for="covariate")
declare(V, "variance_ratios", ("trait", "kinship"), "float64", "ratio to sigma2",
        "REML estimate of lambda_i in Var(y) = sigma2 (sum_i lambda_i K_i + I), lambda_i >= 0")
declare(V, "variance_ratio_se", ("trait", "kinship"), "float64", "ratio to sigma2",
        "standard error of each lambda_i from the information at the optimum (NaN on the boundary 0)")
declare(V, "residual_variance", ("trait",), "float64", "trait unit squared", "REML estimate of sigma2")
declare(V, "variance_proportions", ("trait", "component"), "float64", "proportion",
        "each component's share of the phenotypic variance: lambda_i mean(diag K_i) sigma2 / total (PEPIS pies)")
declare(V, "fixed_effects", ("trait", "covariate"), "float64", "trait unit", "GLS estimates of the fixed effects")
declare(V, "fixed_effect_se", ("trait", "covariate"), "float64", "trait unit", "their standard errors")
declare(V, "reml_loglik", ("trait",), "float64", "log-likelihood",
        "REML log-likelihood at the estimates, including the constant -(n - p)/2 log(2 pi)")
declare(V, "iterations", ("trait",), "int64", "", "REML iterations used")
declare(V, "converged", ("trait",), "bool", "", "whether REML converged within the tolerance")
declare(V, "used_fallback", ("trait",), "bool", "",
        "true where AI-REML did not converge and the L-BFGS-B fallback produced the estimate")
declare(V, "n_individuals_used", ("trait",), "int64", "",
        "individuals with a phenotype for the trait (the others are dropped for that trait)")
declare(V, "skipped", ("trait",), "bool", "",
        "true for a trait the model cannot be fitted to (too few individuals for its degrees of freedom, "
        "constant, or values whose squares overflow): not fitted (its rows are NaN) and left out of the scans")
declare(V, "skip_reasons", ("trait",), "str", "", "why a skipped trait was skipped ('' for a fitted trait)")

# ------------------------------------------------------------------------------------------ scan1d
S1 = "scan1d"
declare(S1, "trait_names", ("trait",), "str", "", "name of each trait scanned", labels_for="trait")
declare(S1, "locus_names", ("locus",), "str", "", "name of each locus scanned", labels_for="locus")
declare(S1, "locus_chromosomes", ("locus",), "str", "", "chromosome of each locus")
declare(S1, "locus_positions_cM", ("locus",), "float64", "cM", "map position of each locus")
declare(S1, "skipped_traits", ("skipped_trait",), "str", "",
        "traits left out of the scan: skipped by varcomp, or (model hk) by the scan's own check")
declare(S1, "skip_reasons", ("skipped_trait",), "str", "", "why each skipped trait was skipped")
declare(S1, "effect_names", ("main_effect",), "str", "", "a (additive) and d (dominance)",
        labels_for="main_effect")
declare(S1, "lrt", ("trait", "locus"), "float64", "chi-square",
        "likelihood-ratio statistic 2 (l1 - l0) of the locus's additive and dominance effects")
declare(S1, "df", ("trait", "locus"), "int64", "", "degrees of freedom of the test (2, fewer when a code is constant)")
declare(S1, "pvalue", ("trait", "locus"), "float64", "probability", "p-value of the LRT")
declare(S1, "lod", ("trait", "locus"), "float64", "LOD", "LOD score: lrt / (2 ln 10), or (n/2) log10(RSS0/RSS1) for hk")
declare(S1, "effects", ("trait", "locus", "main_effect"), "float64", "trait unit",
        "effect estimates (BLUPs in the random model, GLS in the fixed model, regression for hk)")
declare(S1, "effect_se", ("trait", "locus", "main_effect"), "float64", "trait unit",
        "standard errors (prediction errors in the random model)")
declare(S1, "variance_ratios", ("trait", "locus", "main_effect"), "float64", "ratio to sigma2",
        "random model: ML estimates of the locus's effect variances relative to sigma2 (NaN otherwise)")

# ------------------------------------------------------------------------------------------ scan2d
S2 = "scan2d"
declare(S2, "trait_names", ("trait",), "str", "", "name of each trait scanned", labels_for="trait")
declare(S2, "locus_names", ("locus",), "str", "", "name of each locus of the pairs", labels_for="locus")
declare(S2, "locus_chromosomes", ("locus",), "str", "", "chromosome of each locus")
declare(S2, "locus_positions_cM", ("locus",), "float64", "cM", "map position of each locus")
declare(S2, "skipped_traits", ("skipped_trait",), "str", "",
        "traits left out of the scan: skipped by varcomp, or (model hk) by the scan's own check")
declare(S2, "skip_reasons", ("skipped_trait",), "str", "", "why each skipped trait was skipped")
declare(S2, "lrt", ("trait", "pair"), "float32", "chi-square",
        "kinship models: LRT of the pair's aa, ad, da, dd effects (pair k < l packed row-major: see "
        "qtlhpc.parallel.pair_from_index); hk: 2 ln 10 x lod_full")
declare(S2, "df", ("trait", "pair"), "int8", "", "degrees of freedom (4, fewer for pairs with fewer genotype classes)")
declare(S2, "pvalue", ("trait", "pair"), "float32", "probability", "p-value of the LRT")
declare(S2, "lod", ("trait", "pair"), "float32", "LOD", "LOD of the pair's epistatic test (hk: lod_full)")
declare(S2, "hk_statistic_names", ("hk2d_statistic",), "str", "", "full, fv1, int, add, av1 (R/qtl scantwo)",
        labels_for="hk2d_statistic")
declare(S2, "hk_lods", ("trait", "pair", "hk2d_statistic"), "float32", "LOD",
        "Haley-Knott two-QTL LODs (hk model only): full, full vs one, interaction, additive, additive vs one")
declare(S2, "effect_names", ("epistatic_effect",), "str", "", "aa, ad, da, dd", labels_for="epistatic_effect")
declare(S2, "top_trait", ("top_pair",), "int64", "", "trait index of each reported pair")
declare(S2, "top_locus_1", ("top_pair",), "int64", "", "index of the pair's first locus (k)")
declare(S2, "top_locus_2", ("top_pair",), "int64", "", "index of the pair's second locus (l > k)")
declare(S2, "top_lod", ("top_pair",), "float64", "LOD", "the pair's LOD")
declare(S2, "top_pvalue", ("top_pair",), "float64", "probability", "the pair's p-value")
declare(S2, "top_effects", ("top_pair", "epistatic_effect"), "float64", "trait unit",
        "aa, ad, da, dd effect estimates of the reported pair")
declare(S2, "top_effect_se", ("top_pair", "epistatic_effect"), "float64", "trait unit", "their standard errors")

# ------------------------------------------------------------------------------------------ permutations
P = "permutations"
declare(P, "trait_names", ("trait",), "str", "", "name of each trait", labels_for="trait")
declare(P, "permutation_ids", ("permutation",), "int64", "",
        "global id of each permutation; its order of individuals is drawn from the run seed and this id alone")
declare(P, "max_lod_1d", ("permutation", "trait"), "float64", "LOD", "genome-wide maximum 1D LOD under the permutation "
        "(x_specific: the larger of max_lod_1d_autosomes and the X maximum of the same order)")
declare(P, "max_lod_2d", ("permutation", "trait"), "float64", "LOD", "genome-wide maximum 2D LOD under the permutation")
declare(P, "alphas", ("alpha",), "float64", "probability", "significance levels", labels_for="alpha")
declare(P, "threshold_1d", ("alpha", "trait"), "float64", "LOD", "genome-wide 1D LOD threshold at each level")
declare(P, "threshold_2d", ("alpha", "trait"), "float64", "LOD", "genome-wide 2D LOD threshold at each level")
# permutations.x_specific (R/qtl scanone(perm.Xsp = TRUE)): autosomes and X apart
declare_dimension("x_permutation", "an X-chromosome permutation of the X-specific thresholds (R/qtl perm.Xsp: "
                  "ceiling(L_A / L_X x n_permutations) of them)")
declare(P, "autosome_length_cM", (), "float64", "cM", "x_specific: L_A, the summed lengths of the autosomes "
        "(last minus first marker of each)")
declare(P, "x_length_cM", (), "float64", "cM", "x_specific: L_X, the length of the X chromosome")
declare(P, "x_permutation_ids", ("x_permutation",), "int64", "",
        "x_specific: id of each X permutation (permutation unit k owns ids floor(k n_X / n) .. "
        "floor((k+1) n_X / n) - 1)")
declare(P, "max_lod_1d_autosomes", ("permutation", "trait"), "float64", "LOD",
        "x_specific: maximum 1D LOD over the autosomes under the permutation (covariates, sex, pgm moved with the "
        "phenotype, as R/qtl)")
declare(P, "max_lod_1d_x", ("x_permutation", "trait"), "float64", "LOD",
        "x_specific: maximum 1D LOD over the X chromosome under the X permutation")
declare(P, "alphas_autosomes", ("alpha",), "float64", "probability",
        "x_specific: the autosomes' level for each alpha, 1 - (1 - alpha)^(L_A / (L_A + L_X))")
declare(P, "alphas_x", ("alpha",), "float64", "probability",
        "x_specific: the X's level for each alpha, 1 - (1 - alpha)^(L_X / (L_A + L_X))")
declare(P, "threshold_1d_autosomes", ("alpha", "trait"), "float64", "LOD",
        "x_specific: 1D LOD threshold of the autosomes at each genome-wide level (R/qtl summary of perm.Xsp)")
declare(P, "threshold_1d_x", ("alpha", "trait"), "float64", "LOD",
        "x_specific: 1D LOD threshold of the X chromosome at each genome-wide level")
