"""expc: a declarative experiment language for machine-learning research.

The package is assembled from the pipeline folders: `expc.spec` (what a program is),
`expc.interpreter` (what it means and when it runs) and `expc.runtime` (what it computes).
"""

__version__ = "0.1.0"

# The Python API, loaded on first use so that `import expc` stays cheap (no torch, no registry):
#     results = expc.run("exp.exp", overrides={"lr": 1e-3});  results.metric("ppl")
#     results = expc.load()                      # the last run in .expc
_API = ("run", "load", "Results", "Result", "RunFailed")


def __getattr__(name: str):
    if name in _API:
        from expc.interpreter import results

        return getattr(results, name)
    raise AttributeError(f"module 'expc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
