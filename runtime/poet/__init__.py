"""POET and Enhanced POET (Wang et al. 2019, 2020) on gymnasium environments.

Module map (the pipeline of one run):
- `spec`: the settings of a run, whose inline values (`es(...)`, `every(...)`, ...) arrive built by their
  operators (`gym(...)` as an `EnvTemplate` of `Mutable`s); environment mutation within bounds.
- `envs`: the gymnasium side: custom environments (the POET BipedalWalker terrain, a tiny point-reach
  task), `make_env` for any registered id with mutable constructor arguments or attributes.
- `policy`: numpy MLP policies over a flat parameter vector.
- `rollout`: what a worker runs (episodes of a policy, perturbed by seed-derived noise).
- `workers`: one `map` over rollout tasks, in-process, in local processes or as Ray tasks.
- `es`: centered ranks, mirrored sampling, Adam; one ES step from rollout returns.
- `novelty`: environment novelty by parameters or by PATA-EC.
- `loop`: the POET loop (reproduction, minimal criterion, transfer, archive, ANNECS).
- `checkpoint`, `plots`, `annecs`: resume, figures, and the metric.

Nothing in this package is imported when the operators are declared (`runtime/ops/poet.py`).
"""
