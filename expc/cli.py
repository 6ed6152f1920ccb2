"""The `expc` command line. Exit codes: 0 ok, 1 check/run errors, 2 usage errors.

Every command goes through expc.interpreter.compiler.compile (or Session.open, which calls it), and every
problem reaches the user as rendered diagnostics, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from expc.spec.diagnostics import CompileError, Diagnostic, SourceCache, render

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _print_diags(diags: list[Diagnostic], sources: SourceCache | None, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"diagnostics": [d.to_json() for d in diags]}, indent=2))
    else:
        print(render(diags, sources), file=sys.stderr)


# -- commands ----------------------------------------------------------------------------------------


def cmd_check(args) -> int:
    from expc.interpreter.compiler import compile

    all_diags: list[Diagnostic] = []
    sources = SourceCache()
    summaries = []
    for f in args.files:
        try:
            c = compile(f, sources=sources)
            all_diags.extend(c.warnings)
            summaries.append({"file": f, "nodes": len(c.program.nodes), "params": len(c.program.params)})
        except CompileError as e:
            all_diags.extend(e.diagnostics)
    errors = [d for d in all_diags if d.severity == "error"]
    usage = bool(errors) and all(d.code in ("E001", "E002") for d in errors)
    if args.json:
        print(json.dumps({"ok": not errors, "files": summaries, "diagnostics": [d.to_json() for d in all_diags]},
                         indent=2))
    else:
        if all_diags:
            _print_diags(all_diags, sources)
        for s in summaries:
            print(f"{s['file']}: ok ({s['nodes']} nodes, {s['params']} params)")
    return EXIT_USAGE if usage else EXIT_ERRORS if errors else EXIT_OK


def cmd_fmt(args) -> int:
    from expc.spec.printer import format_source

    changed = []
    sources = SourceCache()
    diags: list[Diagnostic] = []
    for f in args.files:
        path = Path(f)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise UsageError(f"cannot read {f}: {e.strerror}")
        except UnicodeDecodeError as e:
            raise UsageError(f"{f} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})")
        sources.add(f, text)
        try:
            out = format_source(text, f)
        except CompileError as e:
            diags.extend(e.diagnostics)
            continue
        if out != text:
            changed.append(f)
            if not args.check:
                path.write_text(out, encoding="utf-8")
    if diags:
        _print_diags(diags, sources)
        return EXIT_ERRORS
    if args.check:
        for f in changed:
            print(f"would reformat {f}")
        return EXIT_ERRORS if changed else EXIT_OK
    for f in changed:
        print(f"reformatted {f}")
    return EXIT_OK


def cmd_graph(args) -> int:
    from expc.interpreter.compiler import compile
    from expc.interpreter.render_graph import to_dot, to_mermaid

    from expc.runtime.registry import load_registry

    registry = load_registry()
    c = compile(args.file, registry)
    print(to_dot(c.program, registry) if args.format == "dot" else to_mermaid(c.program, registry))
    return EXIT_OK


def cmd_export(args) -> int:
    from expc.interpreter.compiler import compile
    from expc.interpreter.export import export_yaml

    c = compile(args.file)
    text = export_yaml(c.program)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_ops(args) -> int:
    from expc.runtime.registry import load_registry, type_name

    reg = load_registry()
    if args.name:
        op = reg.get(args.name)
        if op is None:
            from expc.spec.diagnostics import did_you_mean

            hint = did_you_mean(args.name, reg.names())
            raise UsageError(f"unknown operator '{args.name}'" + (f"; {hint}" if hint else ""))
        kinds = ", ".join(sorted(op.kinds)) or "(nested use only)"
        print(f"{op.name}  ->  {op.returns}    kinds: {kinds}    version: {op.version}")
        if op.doc:
            print()
            print("  " + op.doc.replace("\n", "\n  "))
        print()
        print("parameters:")
        for f in op.fields:
            default = "required" if f.required else f"default {json.dumps(f.default, default=str)}"
            extra = f"; {f.constraints}" if f.constraints else ""
            var = " (variadic)" if f.variadic else ""
            if f.input_types is not None and f.constants is None:
                shown = " | ".join(f.input_types)
                shown = f"list[{shown}]" if f.is_list else shown
            else:
                shown = type_name(f.annotation)
            print(f"  {f.name}: {shown}{var}  [{default}{extra}]")
            if f.description:
                print(f"      {f.description}")
        return EXIT_OK
    width = max((len(n) for n in reg.names()), default=0)
    for name in reg.names():
        op = reg.get(name)
        print(f"{name.ljust(width)}  {op.returns.ljust(9)} {op.summary}")
    return EXIT_OK


def cmd_types(args) -> int:
    """The value types: built-in and declared (expc.runtime.types), with parents, members and kinds."""
    from expc.runtime.registry import load_registry
    from expc.runtime.types import format_type
    from expc.spec.types import KINDS

    types = load_registry().types
    names = types.names()
    if args.name:
        if not types.known(args.name):
            from expc.spec.diagnostics import did_you_mean

            hint = did_you_mean(args.name, names)
            raise UsageError(f"unknown type '{args.name}'" + (f"; {hint}" if hint else ""))
        names = [args.name]
    for name in names:
        t = types.get(name)
        shown = format_type(name, t.params) if t else name
        parent = f" < {t.parent}" if t and t.parent else ""
        print(f"{shown}{parent}  {types.doc(name)}")
        if args.name or t is not None:
            members = types.members(shown) or {}
            kinds = [k for k in KINDS if name in types.kind_types(k)]
            details = [f".{m}: {mt}" for m, mt in members.items()]
            if kinds:
                details.append("kinds: " + ", ".join(kinds))
            if t is not None and not t.node:
                details.append("inline configuration value")
            if t is not None and t.algebra:
                details.append(f"arithmetic: {t.algebra}")
            if details:
                print("    " + "; ".join(details))
    return EXIT_OK


def cmd_run(args) -> int:
    from expc.interpreter.session import Session

    overrides = list(args.overrides)
    settings: dict[str, Any] = {}
    if args.backend:
        settings["backend"] = args.backend
    if args.address:
        settings["address"] = args.address
    saves = [_parse_save(s) for s in args.save or []]
    sources = SourceCache()
    try:
        session = Session.open(args.file, overrides, args.cache, sources=sources, settings=settings or None)
    except CompileError as e:
        _print_diags(e.diagnostics, sources, args.json)
        return EXIT_USAGE if _usage_error(e) else EXIT_ERRORS
    if session.warnings:
        _print_diags(session.warnings, sources)
    for name, _ in saves:
        if name not in session.program.nodes:
            raise UsageError(f"--save: no node named '{name}'")
    if args.dry_run:
        from expc.interpreter.console import print_plan

        rows = session.dry_run()
        if args.json:
            print(json.dumps({"plan": [dict(zip(("node", "op", "status", "why"), r)) for r in rows]}, indent=2))
        else:
            print_plan(rows)
        return EXIT_OK
    from expc.interpreter.console import Console

    console = Console()
    with _stdout_to_stderr(args.json):  # with --json, stdout carries the JSON alone
        result = session.run(events=console.events())
    console.close()
    if args.json:
        from expc.interpreter.results import from_session

        print(json.dumps(from_session(session, result).to_json(), indent=2, default=str))
    if result.failure is not None:
        _print_diags([result.failure], sources)
        print(f"run {result.run_id} failed; finished nodes are kept in {session.store.root}", file=sys.stderr)
        return EXIT_ERRORS
    if result.status != "ok":
        print(f"run {result.run_id} {result.status}; finished nodes are kept", file=sys.stderr)
        return EXIT_ERRORS
    if not args.json:
        console.results(session, result)
    with _stdout_to_stderr(args.json):
        for name, dest in saves:
            _save(session, result, name, dest)
    return EXIT_OK


def cmd_watch(args) -> int:
    from expc.interpreter.watch import watch

    return watch(args.file, list(args.overrides), args.cache, debounce=args.debounce, once=args.max_runs)


def cmd_lsp(args) -> int:
    from expc.interpreter.lsp.server import serve

    return serve(debounce=args.debounce)


def cmd_runs(args) -> int:
    from expc.interpreter.console import print_runs
    from expc.interpreter.runs import Runs
    from expc.interpreter.session import DEFAULT_STORE

    root = Path(args.cache or DEFAULT_STORE)
    if not (root / "runs.sqlite").exists():
        print(f"no runs yet in {root}")
        return EXIT_OK
    print_runs(Runs(root).list_runs(args.limit))
    return EXIT_OK


def cmd_show(args) -> int:
    from expc.interpreter.console import print_run
    from expc.interpreter.results import from_registry
    from expc.interpreter.runs import Runs
    from expc.interpreter.session import DEFAULT_STORE

    root = Path(args.cache or DEFAULT_STORE)
    if not (root / "runs.sqlite").exists():
        raise UsageError(f"no runs in {root}")
    try:
        results = from_registry(root, args.run)
    except LookupError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(results.to_json(), indent=2, default=str))
    else:
        print_run(results, Runs(root))
    return EXIT_OK


# -- helpers -------------------------------------------------------------------------------------------


def _parse_save(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UsageError(f"--save expects NAME=DIR, got '{text}'")
    name, dest = text.split("=", 1)
    return name.strip(), dest.strip()


def _stdout_to_stderr(on: bool):
    import contextlib

    return contextlib.redirect_stdout(sys.stderr) if on else contextlib.nullcontext()


def _save(session, result, name: str, dest: str) -> None:
    """Write a node's result out of the store: its files are hard-linked (or cloned) where DEST is on
    the store's file system, copied elsewhere (Store.export); a plain value as JSON."""
    from expc.runtime.api import Artifact

    ex = session.executor(result.run_id)
    value = result.results.get(name)
    if value is None:
        value = ex.evaluate(name)
    out = Path(dest)
    if isinstance(value, Artifact):
        how = session.store.export(Path(value.path), out, skip=("value.json",))
        print(f"saved {name} ({value.tag}) to {out}{_how(how)}")
    elif _holds_artifact(value):
        # a record of artifacts (a split): its node directory, with value.json naming the members' files
        how = session.store.export(session.store.path(ex.plan(name).key), out, skip=())
        print(f"saved {name} to {out}{_how(how)}")
    else:
        from expc.interpreter.store import encode

        target = out if out.suffix == ".json" else out / f"{name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(encode(value, Path(".")), indent=2), encoding="utf-8")
        print(f"saved {name} to {target}")


def _how(counts: dict[str, int]) -> str:
    """` (3 files hard-linked to the store, read-only; 1 copied)`: what Store.export did."""
    words = {"cloned": "cloned (copy-on-write)", "linked": "hard-linked to the store, read-only",
             "copied": "copied"}
    parts = [f"{n} {words[k]}" if i else f"{n} file{'s' if n != 1 else ''} {words[k]}"
             for i, (k, n) in enumerate(counts.items())]
    return f" ({'; '.join(parts)})" if parts else ""


def _holds_artifact(value: Any) -> bool:
    from expc.runtime.api import Artifact

    if isinstance(value, Artifact):
        return True
    if isinstance(value, dict):
        return any(_holds_artifact(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_artifact(v) for v in value)
    return False


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="expc", description="a declarative experiment language for ML research")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("check", help="parse and check files; report every problem")
    s.add_argument("files", nargs="+")
    s.add_argument("--json", action="store_true", help="diagnostics as JSON (for editors)")
    s.set_defaults(fn=cmd_check)

    s = sub.add_parser("run", help="run an experiment (cached: only changed nodes rerun)")
    s.add_argument("file")
    s.add_argument("overrides", nargs="*", help="KEY=VALUE: a param, experiment.SETTING or NODE.ARG")
    s.add_argument("--dry-run", action="store_true", help="print the plan: each node run or cached, and why")
    s.add_argument("--save", action="append", metavar="NAME=DIR", help="write a node's result out")
    s.add_argument("--cache", help="store directory (default .expc)")
    s.add_argument("--backend", choices=["local", "ray"], help="override experiment.backend")
    s.add_argument("--address", help="Ray cluster address (with --backend ray)")
    s.add_argument("--json", action="store_true",
                   help="print the run and every declared result as JSON (progress goes to stderr)")
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser("watch", help="rerun on save, rerunning only what changed")
    s.add_argument("file")
    s.add_argument("overrides", nargs="*")
    s.add_argument("--cache")
    s.add_argument("--debounce", type=float, default=0.3, help="seconds to wait for more edits")
    s.add_argument("--max-runs", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_watch)

    s = sub.add_parser("fmt", help="format files in the canonical layout")
    s.add_argument("files", nargs="+")
    s.add_argument("--check", action="store_true", help="only report files that would change")
    s.set_defaults(fn=cmd_fmt)

    s = sub.add_parser("graph", help="print the DAG (Mermaid or Graphviz dot)")
    s.add_argument("file")
    s.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    s.set_defaults(fn=cmd_graph)

    s = sub.add_parser("export", help="write the resolved IR as YAML")
    s.add_argument("file")
    s.add_argument("-o", "--output")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("ops", help="list operators, or show one")
    s.add_argument("name", nargs="?")
    s.set_defaults(fn=cmd_ops)

    s = sub.add_parser("types", help="list value types, or show one")
    s.add_argument("name", nargs="?")
    s.set_defaults(fn=cmd_types)

    s = sub.add_parser("lsp", help="the language server for editors (Language Server Protocol on stdio)")
    s.add_argument("--debounce", type=float, default=None, metavar="SECONDS",
                   help="quiet time after an edit before checking (default 0.025)")
    s.set_defaults(fn=cmd_lsp)

    s = sub.add_parser("runs", help="list runs")
    s.add_argument("--cache")
    s.add_argument("--limit", type=int, default=30)
    s.set_defaults(fn=cmd_runs)

    s = sub.add_parser("show", help="print a run's results (default: the last run)")
    s.add_argument("run", nargs="?", type=int)
    s.add_argument("--cache")
    s.add_argument("--json", action="store_true", help="the run and every declared result as JSON")
    s.set_defaults(fn=cmd_show)
    return p


def _usage_error(e: CompileError) -> bool:
    """A problem of the command line (exit 2): a missing file, a bad override key, or errors the
    overrides cause in a file that checks without them."""
    from expc.interpreter.overrides import OverrideError

    return isinstance(e, OverrideError) or all(d.code in ("E001", "E002") for d in e.diagnostics)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as e:  # argparse already printed the usage error
        return EXIT_USAGE if e.code else EXIT_OK
    # Overrides may follow options (`expc run f.exp --dry-run lr=1e-3`): argparse leaves them over.
    leftovers = [x for x in extra if x.startswith("-") or "=" not in x]
    if leftovers or (extra and not hasattr(args, "overrides")):
        parser.print_usage(sys.stderr)
        print(f"expc: error: unrecognized arguments: {' '.join(leftovers or extra)}", file=sys.stderr)
        return EXIT_USAGE
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        return args.fn(args)
    except UsageError as e:
        print(f"expc: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except CompileError as e:
        _print_diags(e.diagnostics, None, getattr(args, "json", False))
        return EXIT_USAGE if _usage_error(e) else EXIT_ERRORS
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug in expc itself: one line for the user, the traceback in a file
        import tempfile
        import traceback

        fd, log = tempfile.mkstemp(prefix="expc-crash-", suffix=".txt")
        with open(fd, "w") as f:
            f.write(traceback.format_exc())
        print(f"expc: internal error: {type(e).__name__}: {e}\n(this is a bug in expc; traceback in {log})",
              file=sys.stderr)
        return EXIT_ERRORS


if __name__ == "__main__":
    sys.exit(main())
