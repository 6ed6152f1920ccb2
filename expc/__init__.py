"""expc: a declarative experiment language for machine-learning research.

The package is assembled from the pipeline folders: `expc.spec` (what a program is),
`expc.interpreter` (what it means and when it runs) and `expc.runtime` (what it computes).
"""

__version__ = "0.1.0"
