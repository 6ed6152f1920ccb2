"""The search runtime (Optuna): search spaces, the trial loop, and the local / process / Ray backends.
Imported only when a `search` node runs."""
