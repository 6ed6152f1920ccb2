"""Command-line overrides, OmegaConf dotlist style: `seed=1 lr=3e-4 m_math.steps=50 experiment.device=cpu`.

    NAME=V            a param (or, if no param has that name, an experiment setting)
    experiment.K=V    an experiment setting
    NODE.FIELD=V      one argument of an operator call the file declares (`train NODE = OP(...)`)
    NODE.FIELD.ARG=V  one argument of an inline value written there (`clf.optimizer.lr=0.01` for
                      `fit(..., optimizer = adam(lr = 3e-3))`); deeper paths nest further
                      (`clf.optimizer.optimizer.lr` in fop(optimizer = sgd(...))). An inline value the
                      file leaves at its default is written out (adam(lr = 0.001), then lr is set)
    PARAM.ARG=V       one argument of a param's inline value (`param opt = adam(lr = 1e-3)`)

Values are read like YAML scalars (numbers, true/false, none, [lists], "strings"). Overrides are applied
to the syntax tree, and the tree is checked again: the value is a literal in place of the expression it
replaces, so it gets exactly the diagnostics the same value written in the file gets, at the uses in
the file, each with a note naming the override. What only the command line can get wrong (an unknown
key, which lists the valid ones; an input argument; a value a searched param cannot take) is an E002
pointing into the command line. Both are raised as OverrideError: a usage error, not the file's.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Iterator

from expc.interpreter.checker import check
from expc.interpreter.loader import Loaded
from expc.runtime.registry import Operator, Registry
from expc.spec import ast
from expc.spec.diagnostics import CompileError, Diagnostic, SourceCache, Span, did_you_mean
from expc.spec.ir import Program, Settings, to_wire

CMDLINE = "<command line>"
_SETTINGS = [k for k in Settings.model_fields if k != "name"]


class OverrideError(CompileError):
    """Diagnostics caused by command-line overrides (the file alone checks): a usage error, exit 2."""


def parse_value(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null", "~"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    if t[:1] in "[{\"":
        try:
            return json.loads(t)
        except ValueError:
            pass
    return t


@dataclass(frozen=True)
class _Item:
    text: str  # as given: "lr=-1"
    key: str
    value: Any
    span: Span  # the whole item, in the command line
    value_span: Span


@dataclass
class _Applied:
    item: _Item
    what: str  # "param 'lr'", "experiment setting 'seed'", "argument 'test' of 'math'"
    spans: list[Span]  # where its effect shows: the literal it became, and the uses of a param


def apply_overrides(loaded: Loaded, program: Program, registry: Registry, overrides: list[str],
                    sources: SourceCache | None = None) -> tuple[Program, list[Diagnostic], dict[str, Any]]:
    """Check the program again with `overrides` applied to its syntax tree (`program` is the file
    checked alone): (program, warnings, param bindings). Raises OverrideError."""
    line = " ".join(overrides)
    if sources is not None:
        sources.add(CMDLINE, line)
    diags: list[Diagnostic] = []
    items = _split(overrides, diags)
    tree = _Tree(loaded, registry)
    bindings: dict[str, Any] = {}
    applied: list[_Applied] = []
    for item in items:
        done = tree.apply(item, program, bindings, diags)
        if done is not None:
            applied.append(done)
    if diags:
        raise OverrideError(diags)
    try:
        new_program, warnings = check(tree.loaded(), registry)
    except CompileError as e:
        whole = Span(CMDLINE, 1, 1, 1, max(2, len(line) + 1))
        raise OverrideError([_noted(d, applied, whole) for d in e.diagnostics]) from None
    return new_program, warnings, bindings


def _split(overrides: list[str], diags: list[Diagnostic]) -> list[_Item]:
    """The items, a key given twice counting once (the last value wins, as in OmegaConf)."""
    items: dict[str, _Item] = {}
    col = 1
    for text in overrides:
        span = Span(CMDLINE, 1, col, 1, col + max(len(text), 1))
        col += len(text) + 1
        if "=" not in text:
            diags.append(Diagnostic("E002", f"bad override '{text}': expected KEY=VALUE", span))
            continue
        key, raw = text.split("=", 1)
        value_col = span.col + len(key) + 1
        value_span = Span(CMDLINE, 1, value_col, 1, value_col + max(len(raw), 1))
        items.pop(key.strip(), None)
        items[key.strip()] = _Item(text, key.strip(), parse_value(raw), span, value_span)
    return list(items.values())


class _Tree:
    """The statements of every module, edited in place of the frozen syntax tree."""

    def __init__(self, loaded: Loaded, registry: Registry):
        self._loaded = loaded
        self.registry = registry
        self.stmts = [list(m.stmts) for m in loaded.modules]
        self.params: dict[str, tuple[int, int]] = {}
        self.decls: dict[str, tuple[int, int]] = {}
        self.experiment: tuple[int, int] | None = None  # the block the checker reads: the last one
        for m, stmts in enumerate(self.stmts):
            for i, s in enumerate(stmts):
                if isinstance(s, ast.Param):
                    self.params[s.name] = (m, i)
                elif isinstance(s, ast.Decl):
                    self.decls[s.name] = (m, i)
                elif isinstance(s, ast.Experiment):
                    self.experiment = (m, i)

    def loaded(self) -> Loaded:
        modules = [dataclasses.replace(m, stmts=tuple(s)) for m, s in zip(self._loaded.modules, self.stmts)]
        return dataclasses.replace(self._loaded, modules=modules)

    def _get(self, at: tuple[int, int]):
        return self.stmts[at[0]][at[1]]

    def _set(self, at: tuple[int, int], stmt) -> None:
        self.stmts[at[0]][at[1]] = stmt

    # -- one override ------------------------------------------------------------------------------

    def apply(self, item: _Item, program: Program, bindings: dict[str, Any], diags: list[Diagnostic]) -> _Applied | None:
        parts = item.key.split(".")
        if len(parts) == 1 and item.key in self.params and item.key in program.params:
            return self._param(item, program, bindings, diags)
        if (len(parts) == 1 and item.key in Settings.model_fields and item.key != "name") or (
            len(parts) == 2 and parts[0] == "experiment"
        ):
            return self._setting(item, parts[-1], diags)
        if len(parts) == 2 and self.operator_of(parts[0]) is not None:
            return self._argument(item, parts[0], parts[1], diags)
        if len(parts) >= 3 and self.operator_of(parts[0]) is not None and self._is_argument(parts[0], parts[1]):
            return self._nested(item, self.decls[parts[0]], parts, f"'{parts[0]}'", diags)
        if len(parts) >= 2 and parts[0] in self.params and self._inline_param(parts[0]) is not None:
            return self._nested(item, self.params[parts[0]], parts, f"param '{parts[0]}'", diags)
        diags.append(Diagnostic("E002", f"unknown override key '{item.key}'", item.span,
                                hint=self._key_hint(item.key)))
        return None

    def _param(self, item: _Item, program: Program, bindings: dict[str, Any], diags) -> _Applied | None:
        name, value = item.key, item.value
        at = self.params[name]
        stmt = self._get(at)
        decl = program.params[name]
        if decl.dist is not None:
            # a searched param keeps its distribution: the value is its default, and a search leaves
            # it fixed (it reads the bindings, ctx.bindings); a value the distribution cannot draw is refused
            dist = self.registry.distribution(to_wire(decl.dist))
            why = dist.contains(value) if dist is not None else None
            if why:
                diags.append(Diagnostic("E002", f"bad override '{item.text}': '{name}' {why}", item.span))
                return None
            call = stmt.expr
            op = self._call_op(call)
            if op is not None and op.field("default") is not None:
                new_call, spans = _set_arg(call, op, "default", value, item.value_span)
                self._set(at, dataclasses.replace(stmt, expr=new_call))
            else:
                spans = [stmt.expr.span]
                self._set(at, dataclasses.replace(stmt, expr=_literal(value, stmt.expr.span), searched=False))
        else:
            spans = [stmt.expr.span]
            self._set(at, dataclasses.replace(stmt, expr=_literal(value, stmt.expr.span)))
        bindings[name] = value
        return _Applied(item, f"param '{name}'", spans + self._uses(name))

    def _setting(self, item: _Item, name: str, diags) -> _Applied | None:
        if name not in _SETTINGS:
            diags.append(Diagnostic("E002", f"unknown experiment setting '{name}' in override '{item.text}'",
                                    item.span, hint=did_you_mean(name, _SETTINGS)
                                    or "settings: " + ", ".join(_SETTINGS)))
            return None
        what = f"experiment setting '{name}'"
        if self.experiment is None:  # no block: the override writes one
            lit = _literal(item.value, item.value_span)
            self.stmts[-1].append(ast.Experiment(Settings().name, (ast.Kwarg(name, lit, item.span, item.span),),
                                                 item.span, item.span))
            return _Applied(item, what, [item.value_span])
        exp = self._get(self.experiment)
        fields = list(exp.fields)
        for i, kw in enumerate(fields):
            if kw.name == name:
                fields[i] = dataclasses.replace(kw, value=_literal(item.value, kw.value.span))
                span = kw.value.span
                break
        else:
            fields.append(ast.Kwarg(name, _literal(item.value, item.value_span), item.span, item.span))
            span = item.value_span
        self._set(self.experiment, dataclasses.replace(exp, fields=tuple(fields)))
        return _Applied(item, what, [span])

    def _argument(self, item: _Item, node: str, name: str, diags) -> _Applied | None:
        at = self.decls[node]
        stmt = self._get(at)
        op = self.operator_of(node)
        settable = self._settable(stmt.expr, op)
        f = op.field(name)
        if f is not None and f.input_types is not None and f.constants is None:
            inline = self._inline_at(stmt.expr, op, name)
            if inline is not None:  # an inline value (an optimizer, an attack): its arguments can be set
                inner = [g.name for g in inline.fields if g.input_types is None]
                diags.append(Diagnostic(
                    "E002", f"'{node}.{name}' is an inline value ({inline.name}(...)): set one of its arguments "
                    f"on the command line, not the whole value", item.span,
                    hint=f"e.g. '{node}.{name}.{inner[0]}={item.text.split('=', 1)[1]}'; its arguments: "
                    + ", ".join(inner) if inner else "change it in the file",
                ))
                return None
            diags.append(Diagnostic(
                "E002", f"'{node}.{name}' is an input of {op.name}(): its value comes from another node and "
                "cannot be set on the command line", item.span,
                hint="change it in the file" + (f"; the arguments you can set: {', '.join(settable)}"
                                                if settable else ""),
            ))
            return None
        if name not in settable:
            diags.append(Diagnostic(
                "E002", f"'{node}' ({op.name}) has no argument '{name}'", item.span,
                hint=did_you_mean(name, settable) or ("arguments: " + ", ".join(settable)),
            ))
            return None
        new_call, spans = _set_arg(stmt.expr, op, name, item.value, item.value_span)
        self._set(at, dataclasses.replace(stmt, expr=new_call))
        return _Applied(item, f"argument '{name}' of '{node}'", spans)

    def _nested(self, item: _Item, at: tuple[int, int], parts: list[str], owner: str, diags) -> _Applied | None:
        """`NODE.FIELD...ARG=V` (or `PARAM.FIELD...ARG=V`): walk from the call written at `at` through the
        inline values written (or defaulted) at each FIELD, and set ARG of the last one."""
        stmt = self._get(at)
        new_expr = self._set_path(item, stmt.expr, parts[0], parts[1:], diags)
        if new_expr is None:
            return None
        call, spans = new_expr
        self._set(at, dataclasses.replace(stmt, expr=call))
        path = ".".join(parts[1:-1])
        return _Applied(item, f"argument '{parts[-1]}' of {owner}" + (f" ({path})" if path else ""), spans)

    def _set_path(self, item: _Item, call: ast.Call, where: str, path: list[str],
                  diags) -> tuple[ast.Call, list[Span]] | None:
        op = self._call_op(call)
        name, rest = path[0], path[1:]
        settable = self._settable(call, op)
        f = op.field(name)
        if not rest:
            if f is not None and f.input_types is not None and self._inline_at(call, op, name) is not None:
                inner = self._inline_at(call, op, name)
                diags.append(Diagnostic(
                    "E002", f"'{where}.{name}' is an inline value ({inner.name}(...)): set one of its arguments",
                    item.span, hint="its arguments: " + ", ".join(g.name for g in inner.fields
                                                                   if g.input_types is None)))
                return None
            if f is not None and f.input_types is not None and f.constants is None:
                diags.append(Diagnostic(
                    "E002", f"'{where}.{name}' is an input of {op.name}(): its value comes from another node and "
                    "cannot be set on the command line", item.span, hint="change it in the file"))
                return None
            if name not in settable:
                diags.append(Diagnostic("E002", f"'{where}' ({op.name}) has no argument '{name}'", item.span,
                                        hint=did_you_mean(name, settable) or ("arguments: " + ", ".join(settable))))
                return None
            return _set_arg(call, op, name, item.value, item.value_span)
        if f is None:
            fields = [g.name for g in op.fields]
            diags.append(Diagnostic("E002", f"'{where}' ({op.name}) has no argument '{name}'", item.span,
                                    hint=did_you_mean(name, fields) or ("arguments: " + ", ".join(fields))))
            return None
        written = _written(call, op, name)
        if isinstance(written, ast.Name) and self._inline_param(written.id) is not None:
            key = ".".join([written.id, *rest])
            diags.append(Diagnostic(
                "E002", f"'{where}.{name}' is the param '{written.id}' in the file: override its argument "
                f"instead, '{key}={item.text.split('=', 1)[1]}'", item.span,
                hint=f"that changes every use of '{written.id}'"))
            return None
        if written is None and isinstance(f.default, dict) and isinstance(f.default.get("$op"), str):
            written = _literal(f.default, item.value_span)  # the default, written out
        inner_op = self._call_op(written) if written is not None else None
        if inner_op is None or not inner_op.inline:
            what = ("is not given in the file and has no inline default" if written is None
                    else "is not an inline value written as a call in the file")
            diags.append(Diagnostic(
                "E002", f"'{where}.{name}' {what}: '{item.key}' names nothing to set", item.span,
                hint=f"set '{where}.{name}' in the file" if written is None else "change it in the file"))
            return None
        inner = self._set_path(item, written, f"{where}.{name}", rest, diags)
        if inner is None:
            return None
        new_inner, spans = inner
        new_call, _ = _set_arg(call, op, name, None, item.value_span, expr=new_inner)
        return new_call, spans

    def _is_argument(self, node: str, name: str) -> bool:
        op = self.operator_of(node)
        return op is not None and op.field(name) is not None

    def _inline_param(self, name: str) -> Operator | None:
        """The inline operator a non-searched param's value is a call of (`param opt = adam(...)`)."""
        stmt = self._get(self.params[name]) if name in self.params else None
        if stmt is None or stmt.searched:
            return None
        op = self._call_op(stmt.expr)
        return op if op is not None and op.inline else None

    def _inline_at(self, call: ast.Call, op: Operator, name: str) -> Operator | None:
        """The inline operator of the value written (or defaulted) at argument `name` of `call`."""
        written = _written(call, op, name)
        if written is None:
            f = op.field(name)
            default = f.default if f is not None else None
            return self.registry.get(default["$op"]) if isinstance(default, dict) and "$op" in default else None
        if isinstance(written, ast.Name) and written.id in self.params:
            return self._inline_param(written.id)
        inner = self._call_op(written)
        return inner if inner is not None and inner.inline else None

    # -- what can be set ---------------------------------------------------------------------------

    def operator_of(self, decl: str) -> Operator | None:
        """The operator a declaration calls, if the file wrote it as an operator call (`OP(...)` or a
        block): only then are its arguments the user's. A node lowered from an expression (merge
        algebra, a re-instantiation) has none to set."""
        at = self.decls.get(decl)
        return self._call_op(self._get(at).expr) if at is not None else None

    def _call_op(self, expr) -> Operator | None:
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            return self.registry.get(expr.func.id)
        return None

    @staticmethod
    def _settable(call: ast.Call, op: Operator) -> list[str]:
        """Arguments that take a value (inputs come from other nodes); plus the extra keywords an
        operator that allows them was given."""
        names = [f.name for f in op.fields if f.input_types is None or f.constants is not None]
        return names + [kw.name for kw in call.kwargs if kw.name not in names and op.field(kw.name) is None]

    def _key_hint(self, key: str) -> str:
        nodes = [n for n in self.decls if self.operator_of(n) is not None]
        candidates = list(self.params) + _SETTINGS + [f"experiment.{k}" for k in _SETTINGS] + [
            f"{n}.{a}" for n in nodes for a in self._settable(self._get(self.decls[n]).expr, self.operator_of(n))]
        valid = sorted(self.params) + [f"experiment.{k}" for k in _SETTINGS] + [f"{n}.<argument>" for n in nodes]
        return did_you_mean(key, candidates) or "valid keys: " + ", ".join(valid)

    def _uses(self, param: str) -> list[Span]:
        """Where the param is read: its name in every expression, and the names of the params computed
        from it (an error about `steps = 3 * steps` shows at the use)."""
        names = {param}
        changed = True
        while changed:
            changed = False
            for p, at in self.params.items():
                if p not in names and any(n.id in names for n in _names(self._get(at).expr)):
                    names.add(p)
                    changed = True
        return [n.span for stmts in self.stmts for s in stmts for e in _exprs(s) for n in _names(e)
                if n.id in names]


def _set_arg(call: ast.Call, op: Operator, name: str, value: Any, new_span: Span,
             expr: ast.Expr | None = None) -> tuple[ast.Call, list[Span]]:
    """The call with argument `name` set to a literal of `value` (or to `expr`), where the file wrote it
    (positional or keyword) or, if it did not, as a new keyword argument spanning the value on the
    command line."""
    def new(span: Span) -> ast.Expr:
        return expr if expr is not None else _literal(value, span)

    args = list(call.args)
    for pos, arg in enumerate(args):
        if pos >= len(op.fields):
            break
        f = op.fields[pos]
        if f.variadic:  # takes every remaining positional argument
            if f.name == name:
                span = arg.span.to(args[-1].span)
                items = tuple(_literal(v, span) for v in (value if isinstance(value, list) else [value]))
                return dataclasses.replace(call, args=tuple(args[:pos]) + items), [span]
            break
        if f.name == name:
            args[pos] = new(arg.span)
            return dataclasses.replace(call, args=tuple(args)), [arg.span]
    kwargs = list(call.kwargs)
    for i, kw in enumerate(kwargs):
        if kw.name == name:
            kwargs[i] = dataclasses.replace(kw, value=new(kw.value.span))
            return dataclasses.replace(call, kwargs=tuple(kwargs)), [kw.value.span]
    kwargs.append(ast.Kwarg(name, new(new_span), new_span, new_span))
    return dataclasses.replace(call, kwargs=tuple(kwargs)), [new_span]


def _written(call: ast.Call, op: Operator, name: str) -> ast.Expr | None:
    """The expression the file wrote for argument `name` of `call` (positional or keyword), if any."""
    for pos, arg in enumerate(call.args):
        if pos >= len(op.fields) or op.fields[pos].variadic:
            break
        if op.fields[pos].name == name:
            return arg
    return next((kw.value for kw in call.kwargs if kw.name == name), None)


def _literal(value: Any, span: Span) -> ast.Expr:
    """The syntax of a value read from the command line; its span is where it takes effect."""
    if isinstance(value, bool):
        return ast.Bool(value, span)
    if value is None:
        return ast.NoneLit(span)
    if isinstance(value, int):
        return ast.Int(value, str(value), span)
    if isinstance(value, float):
        return ast.Float(value, repr(value), span)
    if isinstance(value, list):
        return ast.ListExpr(tuple(_literal(v, span) for v in value), span)
    if isinstance(value, dict) and isinstance(value.get("$op"), str):  # an inline value (a genome): its call
        return ast.Call(ast.Name(value["$op"], span), (),
                        tuple(ast.Kwarg(str(k), _literal(v, span), span, span) for k, v in value.items() if k != "$op"),
                        span)
    if isinstance(value, dict):
        return ast.RecordExpr(tuple(ast.RecordField(str(k), _literal(v, span), span, span, quoted=True)
                                    for k, v in value.items()), span)
    return ast.Str(str(value), json.dumps(str(value), ensure_ascii=False), span)


def _exprs(stmt) -> Iterator[ast.Expr]:
    if isinstance(stmt, (ast.Param, ast.Decl)):
        yield stmt.expr
    elif isinstance(stmt, ast.Experiment):
        yield from (kw.value for kw in stmt.fields)


def _names(node) -> Iterator[ast.Name]:
    """Every Name inside an expression (the syntax nodes are dataclasses: walk their fields)."""
    if isinstance(node, ast.Name):
        yield node
    elif isinstance(node, tuple):
        for x in node:
            yield from _names(x)
    elif dataclasses.is_dataclass(node) and not isinstance(node, Span):
        for f in dataclasses.fields(node):
            yield from _names(getattr(node, f.name))


def _noted(d: Diagnostic, applied: list[_Applied], whole: Span) -> Diagnostic:
    """The diagnostic with a note naming the override(s) that caused it: those whose literal or uses it
    points at; all of them when it points elsewhere (an error downstream of an overridden value). One
    that already points into the command line (a value the file does not write) needs none."""
    if d.span is not None and d.span.file == CMDLINE:
        return d
    mine = [a for a in applied if d.span is not None and any(_overlaps(d.span, s) for s in a.spans)]
    if mine:
        notes = tuple((f"the override '{a.item.text}' sets {a.what}", a.item.span) for a in mine)
    elif d.severity == "error":
        shown = " ".join(f"'{a.item.text}'" for a in applied)
        notes = ((f"with the overrides {shown} on the command line", whole),)
    else:
        return d
    return dataclasses.replace(d, notes=d.notes + notes)


def _overlaps(a: Span, b: Span) -> bool:
    return (a.file == b.file and (a.line, a.col) < (b.end_line, b.end_col)
            and (b.line, b.col) < (a.end_line, a.end_col))
