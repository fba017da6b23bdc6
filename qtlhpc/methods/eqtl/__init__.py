"""Expression QTL mapping: cis, cis-trans, PC and trans mapping of a cross (Liu, de la Fuente &
Hoeschele 2008) and population cis-eQTL with permutations as FastQTL (Ongen et al. 2016)."""
