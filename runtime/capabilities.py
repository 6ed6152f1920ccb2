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

    def default_value(self) -> Any:
        """The value outside a search, None when there is none (then the param must be searched or
        bound): by default the distribution's field `default`."""
        return getattr(self, "default", None)

    def grid(self, points: int) -> list[Any]:
        """The values a grid search visits; `points` for a continuous range."""
        raise NotImplementedError

    def optuna(self) -> Any:
        """The Optuna distribution (imports optuna: only called when a search runs)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Agrees:
    """Capability of an operator whose field types depend on each other: the type of field `field`
    must be one that `table` gives for the type of field `on` (the first entry whose key the type of
    `on` is a subtype of; no entry: anything). `fit` trains a `net` on `tensors`, a `recurrent` net on
    `episodes`, a language model on text: `fit(mlp(), prose.train)` is a check-time type error naming
    both types, without the checker knowing fit."""

    on: str
    field: str
    table: tuple[tuple[str, tuple[str, ...]], ...]

    def wanted(self, types, on_type: str) -> tuple[str, ...] | None:
        for key, wanted in self.table:
            if types.is_subtype(on_type, key):
                return wanted
        return None


@dataclass(frozen=True)
class ReturnsBy:
    """Capability of an operator whose result type depends on an argument's type: the first entry of
    `table` whose key the type of field `field` is a subtype of gives the result type (no entry: the
    declared `returns`). `fit` returns a `classifier` from a `net` or a classifier, a plain `model`
    from a recurrent net or a language model, so `accuracy(fit(rnn_lm(), ...), ...)` is a check-time
    type error."""

    field: str
    table: tuple[tuple[str, str], ...]

    def type_for(self, types, arg_type: str | None) -> str | None:
        if arg_type is None:
            return None
        for key, result in self.table:
            if types.is_subtype(arg_type, key):
                return result
        return None


@dataclass(frozen=True)
class Evaluates:
    """Capability of an operator that evaluates the nodes of its Deferred fields under param bindings
    (a search, an evolution, a population of POET pairs): the params it varies are those listed in
    its field `over` when given, else every searched (`~`) param the deferred nodes depend on. The
    checker does not demand defaults for them; the graph shows the evaluation edges."""

    over: str | None = None


class Genome(Distribution):
    """Base of the params model of an architecture-valued distribution (`param arch ~ mlps(...)`,
    `cells(...)`, `coevolved(...)`): its values are genomes, JSON values that are inline operator
    values ({"$op": NAME, ...}: an `mlp(...)`, a `cell(...)`, a `network(...)`), so a node that uses
    the param receives the genome exactly as if the user had written that value. Never pickled.

    Search strategies (runtime/search/strategy.py) need only these methods; an Optuna sampler over a
    genome param draws an integer seed and the genome is `sample(random.Random(seed))`."""

    def value_type(self) -> str:
        """The declared type of the genomes (e.g. "net", "cell")."""
        raise NotImplementedError

    def default(self) -> dict:
        """The genome used outside a search (and the placeholder that keys a search)."""
        raise NotImplementedError

    def sample(self, rng) -> dict:
        """A random valid genome (rng: random.Random)."""
        raise NotImplementedError

    def mutate(self, genome: dict, rng) -> dict:
        """A valid genome near `genome` (a new value; the argument is not changed)."""
        raise NotImplementedError

    def crossover(self, a: dict, b: dict, rng) -> tuple[dict, dict]:
        """Two valid children of `a` and `b`."""
        raise NotImplementedError

    def distance(self, a: dict, b: dict) -> float:
        """A structural distance >= 0 (0 for equal genomes): diversity and speciation."""
        raise NotImplementedError

    def describe(self, genome: dict) -> list[str]:
        """Lines that show a genome to a person (a cell as formulas, a network as its layer graph)."""
        return [str(genome)]

    def default_genome(self) -> dict:
        """What callers use instead of default(): a space may declare a field `default` (as
        `cells(default = lstm_cell())` does), which hides the method; then the field's value is the
        default (a space whose `default` field may be None overrides this)."""
        d = self.default
        return d() if callable(d) else d

    def default_value(self) -> Any:
        return self.default_genome()

    def ends(self) -> list[Any]:
        return [self.default_genome()]

    def placeholder(self) -> Any:
        return self.default_genome()

    def grid(self, points: int) -> list[Any]:
        raise ValueError("an architecture space has no grid: use a strategy (evolution(...)) or random()")

    def optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(0, 2**31 - 1)  # the seed of sample(); see the class docstring


class SpaceGenome(Genome):
    """A Genome whose search operations are those of a space object built from its fields by `_space()`
    (e.g. runtime/genomes/cells.py's CellSpace), imported only then: the params model stays light."""

    def _space(self):
        raise NotImplementedError

    def contains(self, value: Any) -> str | None:
        return self._space().contains(value)

    def sample(self, rng) -> dict:
        return self._space().sample(rng)

    def mutate(self, genome: dict, rng) -> dict:
        return self._space().mutate(genome, rng)

    def crossover(self, a: dict, b: dict, rng) -> tuple[dict, dict]:
        return self._space().crossover(a, b, rng)

    def distance(self, a: dict, b: dict) -> float:
        return self._space().distance(a, b)
