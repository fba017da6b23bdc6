"""Statistics shared by every method: chi-square tails, permutation thresholds, q-values and FDR."""
