"""Architectures as genomes: JSON values that search strategies sample, mutate and cross over, and that
compile to torch modules when a node uses them."""
