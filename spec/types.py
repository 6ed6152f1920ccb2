"""The value types of the language and the declaration kinds.

Types are plain strings so that adding one (for a new research system) is a one-line change here.
Structured results (a data split, a search) expose members through MEMBERS.
"""

from __future__ import annotations

# Every type a value can have. "any" is the checker's escape hatch for unknown members.
TYPES: dict[str, str] = {
    "number": "an int or a float",
    "int": "an integer (also a number)",
    "string": "text in double quotes",
    "bool": "true or false",
    "list": "a list [a, b, ...]",
    "record": "a record {key: value, ...}",
    "dist": "a search distribution (uniform, loguniform, int, choice)",
    "objective": "a search objective (minimize / maximize)",
    "sampler": "an Optuna sampler",
    "pruner": "an Optuna pruner",
    "data": "a dataset of examples",
    "split": "a train/test split of a dataset (members .train, .test)",
    "model": "a model (weights and config)",
    "tokenizer": "a tokenizer",
    "env": "an environment (gymnasium)",
    "agent": "a policy architecture for POET / RL",
    "es": "an evolution-strategy configuration",
    "schedule": "a schedule (every N iterations, ...)",
    "novelty": "a novelty measure",
    "mutable": "a mutable environment parameter",
    "metric": "an evaluation result",
    "search": "the result of a search (members .best, .trials)",
    "poet": "the result of a POET run",
    "report": "a report (tables and plots)",
    "plot": "a report plot or measured comparison (history, response, curves, cost)",
    "any": "any value",
}

# Subtyping: a value of the key type is accepted where the value type is expected.
SUBTYPES: dict[str, set[str]] = {
    "int": {"number"},
    "bool": set(),
}

# Members of structured values: type -> member -> type.
MEMBERS: dict[str, dict[str, str]] = {
    "split": {"train": "data", "test": "data"},
    "search": {"best": "record", "best_value": "number", "trials": "list", "pareto": "list"},
    "poet": {"annecs": "number", "pairs": "list", "archive": "list"},
    "metric": {"value": "number"},
    "record": {},  # open: any member
}

# Declaration kinds: kind -> (types a declaration of that kind may hold, description).
# `KIND NAME { ... }` calls the operator named KIND (the kind's default operator), if there is one.
KINDS: dict[str, tuple[frozenset[str], str]] = {
    "data": (frozenset({"data", "split"}), "a data source"),
    "model": (frozenset({"model", "agent"}), "a model"),
    "train": (frozenset({"model"}), "a trained model"),
    "merge": (frozenset({"model"}), "a merged model"),
    "env": (frozenset({"env"}), "an environment"),
    "eval": (frozenset({"metric", "number", "record"}), "an evaluation"),
    "search": (frozenset({"search"}), "a hyper-parameter / weight search"),
    "poet": (frozenset({"poet"}), "a POET run"),
    "report": (frozenset({"report"}), "a report"),
}

STATEMENT_KEYWORDS = ("experiment", "import", "param", *KINDS)


def is_subtype(actual: str, expected: str) -> bool:
    if expected == "any" or actual == "any" or actual == expected:
        return True
    return expected in SUBTYPES.get(actual, set())


def accepts(actual: str, expected: tuple[str, ...] | frozenset[str]) -> bool:
    return any(is_subtype(actual, e) for e in expected)


def describe(types) -> str:
    types = sorted(types)
    if len(types) == 1:
        return types[0]
    return ", ".join(types[:-1]) + " or " + types[-1]
