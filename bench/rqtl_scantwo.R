# Time R/qtl's scantwo(method="hk") on a simulated backcross of the bench's size.
# Usage: Rscript bench/rqtl_scantwo.R N_INDIVIDUALS N_CHROMOSOMES MARKERS_PER_CHROMOSOME [bc|f2]
# All positions are markers (no pseudomarkers), so the scan covers every pair of them.
suppressMessages(library(qtl))
raw <- commandArgs(trailingOnly = TRUE)
args <- as.integer(raw[1:3])
n_ind <- args[1]; n_chr <- args[2]; n_mar <- args[3]
cross_type <- if (length(raw) >= 4) raw[4] else "bc"
set.seed(1)
map <- sim.map(len = rep(100, n_chr), n.mar = n_mar, include.x = FALSE, eq.spacing = TRUE)
cross <- sim.cross(map, n.ind = n_ind, type = cross_type, missing.prob = 0.05)
cross <- calc.genoprob(cross, step = 0, error.prob = 0.001)
n_pos <- sum(nmar(cross))
elapsed <- system.time(out <- scantwo(cross, method = "hk", verbose = FALSE))[["elapsed"]]
cat(sprintf("rqtl_scantwo_hk cross=%s positions=%d pairs=%d seconds=%.3f\n", cross_type, n_pos, n_pos * (n_pos - 1) / 2, elapsed))
