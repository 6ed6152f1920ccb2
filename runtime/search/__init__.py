"""The search runtime (Optuna): the ask/tell trial loop and the objectives. Where trials run (this
process, worker processes, Ray tasks) is the interpreter's business: the loop calls ctx.map.
Imported only when a `search` node runs."""
