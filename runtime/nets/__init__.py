"""Native networks: classifiers built from `mlp(...)` / `cnn(...)` architectures (build.py), stored as
model directories and loaded back (load.py), and the metrics computed from their logits (metrics.py).
Imported only when an operator runs (torch)."""
