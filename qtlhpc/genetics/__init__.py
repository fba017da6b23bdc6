"""Method-independent genetics shared by every method: map functions, the R/qtl HMM and genotype
probabilities, two-locus probabilities, Haley-Knott scans and the cross simulator."""
