"""Which layers of a native backbone an adapter's `at` names (no torch: `expc check` asks it too)."""

from __future__ import annotations

import fnmatch


def matches(name: str, at: str) -> bool:
    """`at` names a layer ("hidden.1"), a group ("hidden": hidden.0, hidden.1, ...) or a glob ("*.1")."""
    return name == at or name.startswith(at + ".") or fnmatch.fnmatchcase(name, at)


def no_layer(at: str, names: list[str]) -> str | None:
    """Why no layer of `names` matches `at`, or None when one does."""
    if any(matches(n, at) for n in names):
        return None
    known = ", ".join(names) or "none: the net has no hidden or conv layer"
    return f'no layer of the backbone matches at = "{at}" (its layers: {known})'
