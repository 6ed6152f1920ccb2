"""What an operator can declare instead of being known by name: a search distribution's behaviour
(`Distribution`) and the evaluation of other nodes under param bindings (`Evaluates`). No torch here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from expc.runtime.params import Params


class Distribution(Params):
    """Base of the params model of a search distribution (`param x ~ uniform(0, 1)`): the
    distribution declares what it draws, so the interpreter and the search never test its name."""

    def value_type(self) -> str:
        """The type of the values drawn ("number", "int", or "any")."""
        raise NotImplementedError

    def contains(self, value: Any) -> str | None:
        """None when `value` can be drawn; otherwise why not (for an override or a binding)."""
        raise NotImplementedError

    def ends(self) -> list[Any]:
        """The extreme values: an operator argument bound to the param must accept each of them."""
        raise NotImplementedError

    def bounds(self) -> tuple[float, float] | None:
        """[lo, hi] of a numeric distribution (None for a categorical one)."""
        return None

    def placeholder(self) -> Any:
        """A fixed valid value (a search's cache key is computed with params at their placeholder)."""
        return self.ends()[0]

    def grid(self, points: int) -> list[Any]:
        """The values a grid search visits; `points` for a continuous range."""
        raise NotImplementedError

    def optuna(self) -> Any:
        """The Optuna distribution (imports optuna: only called when a search runs)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Evaluates:
    """Capability of an operator that evaluates the nodes of its Deferred fields under param bindings
    (a search, an evolution, a population of POET pairs): the params it varies are those listed in
    its field `over` when given, else every searched (`~`) param the deferred nodes depend on. The
    checker does not demand defaults for them; the graph shows the evaluation edges."""

    over: str | None = None
