"""`expc watch`: rerun on save, rerunning only nodes whose keys changed.

Watches the program file, its imports and every data file or directory it reads (watchdog, on their
parent directories, so editors that save by rename are seen). Edits are debounced; a check error is
printed and watching goes on; an edit that arrives while a run is going cancels that run at the next
node boundary (or sooner, where an operator calls ctx.check_cancelled) and starts the new one.
Finished nodes are in the store, so nothing computed is lost.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from expc.spec.ir import FileRef, OpNode, walk
from expc.spec.diagnostics import CompileError, SourceCache, render


def watched_paths(program, main: str) -> set[Path]:
    paths = {Path(main).resolve()}
    paths |= {Path(f).resolve() for f in program.files}
    for node in program.nodes.values():
        for value in (node.args.values() if isinstance(node, OpNode) else ()):
            paths |= {Path(v.path) for _, v in walk(value) if isinstance(v, FileRef)}
    return paths


class _Watcher:
    def __init__(self) -> None:
        from watchdog.observers import Observer

        self.observer = Observer()
        self.paths: set[Path] = set()
        self.dirs: set[Path] = set()
        self.changed = threading.Event()
        self.last: Path | None = None
        self.observer.start()

    def set_paths(self, paths: set[Path]) -> None:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                for p in (getattr(event, "src_path", None), getattr(event, "dest_path", None)):
                    if p and watcher._relevant(Path(p)):
                        watcher.last = Path(p)
                        watcher.changed.set()
                        return

        self.paths = set(paths)
        for p in paths:
            # a watched directory (a model or data dir) is watched recursively, a file through its parent
            target, recursive = (p, True) if p.is_dir() else (p.parent, False)
            if target not in self.dirs and target.exists():
                self.observer.schedule(Handler(), str(target), recursive=recursive)
                self.dirs.add(target)

    def _relevant(self, p: Path) -> bool:
        p = p.resolve()
        return any(p == w or w in p.parents for w in self.paths)

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)


def watch(file: str, overrides: list[str], cache: str | None, debounce: float = 0.3,
          once: int | None = None, out=None) -> int:
    """Returns an exit code when interrupted (Ctrl-C) or after `once` cycles (for tests)."""
    from expc.interpreter.console import Console
    from expc.interpreter.session import Session

    out = out or sys.stdout
    watcher = _Watcher()
    watcher.set_paths({Path(file).resolve()})
    cycles = 0
    try:
        while True:
            watcher.changed.clear()
            sources = SourceCache()
            try:
                session = Session.open(file, overrides, cache, sources=sources)
            except CompileError as e:
                print(render(e.diagnostics, sources), file=sys.stderr, flush=True)
                print("watching for changes (fix the errors above)...", file=out, flush=True)
            else:
                watcher.set_paths(watched_paths(session.program, file))
                _run_cycle(session, watcher, Console(), out)
            cycles += 1
            if once is not None and cycles >= once:
                return 0
            watcher.changed.wait()
            _settle(watcher, debounce)
            print(f"\n-- change in {watcher.last.name if watcher.last else file}: rerunning", file=out, flush=True)
    except KeyboardInterrupt:
        print("stopped watching", file=out)
        return 0
    finally:
        watcher.stop()


def _settle(watcher: _Watcher, debounce: float) -> None:
    """Wait until no change has arrived for `debounce` seconds (editors write in bursts)."""
    while True:
        watcher.changed.clear()
        if not watcher.changed.wait(debounce):
            return


def _run_cycle(session, watcher: _Watcher, console, out) -> None:
    cancel = threading.Event()
    box: dict = {}

    def target():
        box["result"] = session.run(events=console.events(), cancel=cancel, command="watch")

    t = threading.Thread(target=target, daemon=True)
    t.start()
    while t.is_alive():
        if watcher.changed.wait(0.1) and t.is_alive():
            cancel.set()  # superseded: stop at the next node boundary or ctx.check_cancelled()
            print("-- change during the run: cancelling it", file=out, flush=True)
            t.join()
            watcher.changed.set()  # keep the change pending for the main loop
            break
    t.join()
    console.close()
    result = box.get("result")
    if result is None:
        return
    if result.failure is not None:
        print(render([result.failure], session.sources), file=sys.stderr, flush=True)
    elif result.status == "ok":
        console.results(session, result)
    else:
        print(f"run {result.run_id} {result.status}", file=out, flush=True)
    print("watching for changes...", file=out, flush=True)
