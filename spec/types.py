"""The built-in scalar types and the declaration kinds.

Every other value type (data, models, metrics, searches, ...) is declared in `runtime/` next to the
operators that produce it (see expc.runtime.types); spec/ knows only what every program has.
"""

from __future__ import annotations

# The built-in types. "any" is the checker's escape hatch for unknown members.
TYPES: dict[str, str] = {
    "number": "an int or a float",
    "int": "an integer (also a number)",
    "string": "text in double quotes",
    "bool": "true or false",
    "list": "a list [a, b, ...]",
    "record": "a record {key: value, ...}",
    "any": "any value",
}

# Subtyping among the built-in types: a value of the key type is accepted where one of the values is.
BUILTIN_SUBTYPES: dict[str, set[str]] = {
    "int": {"number"},
    "number": set(),
    "bool": set(),
    "string": set(),
    "list": set(),
}

# Declaration kinds: kind -> (built-in types a declaration of that kind may hold, description).
# Declared value types add themselves to the kinds they belong to (expc.runtime.types.ValueType.kinds).
# `KIND NAME { ... }` calls the operator named KIND (the kind's default operator), if there is one.
KINDS: dict[str, tuple[frozenset[str], str]] = {
    "data": (frozenset(), "a data source"),
    "model": (frozenset(), "a model"),
    "train": (frozenset(), "a trained model"),
    "merge": (frozenset(), "a merged model"),
    "env": (frozenset(), "an environment"),
    "eval": (frozenset({"number", "record"}), "an evaluation"),
    "search": (frozenset(), "a hyper-parameter / weight search"),
    "poet": (frozenset(), "a POET run"),
    "report": (frozenset(), "a report"),
    "continual": (frozenset(), "a continual-learning run over a stream of tasks"),
    "meta": (frozenset(), "a meta-learned artifact (a teacher, a dish)"),
}

STATEMENT_KEYWORDS = ("experiment", "import", "param", *KINDS)


def describe(types) -> str:
    types = sorted(types)
    if len(types) == 1:
        return types[0]
    return ", ".join(types[:-1]) + " or " + types[-1]
