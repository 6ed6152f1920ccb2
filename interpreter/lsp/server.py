"""`expc lsp`: the Language Server Protocol on stdio (pygls).

Checking: one worker thread checks documents (the parser is not thread-safe, so everything that
parses runs there). An edit schedules a check after a short quiet period (`debounce`); while a check
runs, further edits wait for it and are checked together, newest text only, so typing in a big file
never queues stale work. Diagnostics are published only for the version they were computed for.

Requests that point into the text (hover, definition, references, symbols, code actions) wait for
the check of the current version; completion does not (the statement being typed rarely parses):
it reads the tokens of the buffer and the names and types of the last check.

Nothing here runs an operator or imports torch: checking is `expc check`, and a hover's cached
result is read from the store after planning the node's key.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from expc.interpreter.lsp import actions, completion, hover, navigation
from expc.interpreter.lsp.analysis import Analysis, analyze
from expc.interpreter.lsp.cached import ResultReader, find_store
from expc.interpreter.lsp.incremental import StatementParser
from expc.interpreter.lsp.positions import Lines, utf16_units
from expc.interpreter.lsp.symbols import resolve_file
from expc.interpreter.loader import display_path
from expc.spec import ast
from expc.spec.diagnostics import Span

log = logging.getLogger("expc.lsp")

DEFAULT_DEBOUNCE = 0.025  # seconds of quiet after an edit before checking (a burst of changes: one check)
IDLE_COLLECT = 10.0  # seconds without a check before the cyclic garbage collector looks at everything


class ExpcLanguageServer(LanguageServer):
    def __init__(self, debounce: float = DEFAULT_DEBOUNCE):
        super().__init__("expc", "0.1.0", text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.debounce = debounce
        self.store_setting: str | None = None
        self.parser = StatementParser()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="expc-check")
        self.store_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="expc-store")
        self.analyses: dict[str, Analysis] = {}
        self.inflight: dict[str, asyncio.Future] = {}
        self.scheduled: dict[str, asyncio.Task] = {}
        self.stale: set[str] = set()  # checked, but an import was saved since
        self._registry = None
        self._reader: ResultReader | None = None
        self._idle: asyncio.TimerHandle | None = None

    # -- the registry (loaded once, in the worker) ----------------------------------------------------

    @property
    def registry(self):
        if self._registry is None:
            from expc.runtime.registry import load_registry

            self._registry = load_registry()
        return self._registry

    @property
    def reader(self) -> ResultReader:
        if self._reader is None:
            self._reader = ResultReader(self.registry)
        return self._reader

    # -- positions -------------------------------------------------------------------------------------

    @property
    def units(self) -> Callable[[str], int]:
        enc = self.workspace.position_encoding if self.protocol._workspace is not None else None
        if enc == lsp.PositionEncodingKind.Utf8:
            return lambda s: len(s.encode("utf-8"))
        if enc == lsp.PositionEncodingKind.Utf32:
            return len
        return utf16_units

    def lines(self, a: Analysis, file: str | None = None) -> Lines:
        """The lines of the analysed text, or of another file of its program (as read from disk)."""
        cache = a.__dict__.setdefault("_lines", {})
        file = file or a.file
        if file not in cache:
            if file == a.file:
                text = a.text
            else:
                try:
                    text = resolve_file(file).read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError):
                    text = ""
            cache[file] = Lines(text, self.units)
        return cache[file]

    def range(self, a: Analysis, span: Span | None) -> lsp.Range:
        return self.lines(a, span.file if span is not None else None).range(span)

    def location(self, a: Analysis, span: Span) -> lsp.Location:
        return lsp.Location(uri=navigation.file_uri(resolve_file(span.file)), range=self.range(a, span))

    # -- checking --------------------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float) -> None:
        task = self.scheduled.pop(uri, None)
        if task is not None:
            task.cancel()
        self.scheduled[uri] = asyncio.ensure_future(self._check_later(uri, delay))

    async def _check_later(self, uri: str, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await self.current(uri)
        except asyncio.CancelledError:
            pass
        except Exception:
            self.internal_error(f"checking {uri} failed", traceback.format_exc())

    async def current(self, uri: str) -> Analysis | None:
        """The analysis of the document's current version, checking it now if needed."""
        while True:
            doc = self._document(uri)
            if doc is None:
                return None
            a = self.analyses.get(uri)
            if a is not None and a.version == doc.version and a.text == doc.source and uri not in self.stale:
                return a
            running = self.inflight.get(uri)
            if running is None:
                running = self._start(uri, doc.source, doc.version)
            try:
                await asyncio.shield(running)  # a cancelled waiter must not cancel the check itself
            except asyncio.CancelledError:
                raise
            except Exception:  # the check itself failed (a bug; _finished logged it): what there is
                return self.analyses.get(uri)

    def _start(self, uri: str, text: str, version: int | None) -> asyncio.Future:
        self.stale.discard(uri)
        loop = asyncio.get_running_loop()
        path = Path(to_fs_path(uri) or "untitled.exp")
        fut = loop.run_in_executor(self.worker, self._analyze, uri, path, text, version)
        self.inflight[uri] = fut
        fut.add_done_callback(functools.partial(self._finished, uri))
        return fut

    def _analyze(self, uri: str, path: Path, text: str, version: int | None) -> Analysis:
        a = analyze(uri, path, text, version, self.registry, self.parser, self.analyses.get(uri))
        # A check of a big file makes a million objects that live until the next check; the cyclic
        # collector would scan them all again and again (5,000 statements, in-process: 2.0-2.9 s per
        # check with it, 0.8-1.0 s frozen). Frozen objects are still freed by reference counting; any
        # cycles among them are collected when the server is idle (_collect).
        gc.freeze()
        return a

    def _collect_when_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(IDLE_COLLECT, lambda: loop.run_in_executor(self.worker, _collect))

    def internal_error(self, what: str, trace: str) -> None:
        """A bug in expc: logged, and shown in the editor's log of this server (the user sees no error)."""
        log.error("%s:\n%s", what, trace)
        try:
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error, message=f"{what}:\n{trace}"))
        except Exception:  # no client to tell (shutting down)
            pass

    def _finished(self, uri: str, fut: asyncio.Future) -> None:
        self.inflight.pop(uri, None)
        if fut.cancelled() or fut.exception() is not None:
            if not fut.cancelled():
                exc = fut.exception()
                self.internal_error(f"checking {uri} failed",
                                    "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            return
        a: Analysis = fut.result()
        for d in a.diagnostics:
            if d.code == "internal":
                self.internal_error(f"checking {uri}: {d.message}", a.trace)
        self._collect_when_idle()
        doc = self._document(uri)
        if doc is None:
            return  # closed meanwhile
        self.analyses[uri] = a
        if a.version == doc.version and a.text == doc.source:
            self.publish(a)

    def publish(self, a: Analysis) -> None:
        diagnostics = [ld for _, ld in self.diagnostics(a)]
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=a.uri, version=a.version, diagnostics=diagnostics))

    def diagnostics(self, a: Analysis) -> list[tuple[Any, lsp.Diagnostic]]:
        """(expc diagnostic, LSP diagnostic) of an analysis, all in its own document: a problem in an
        imported file is shown on the import that brings it in, with its place as related information."""
        cache = a.__dict__.get("_lsp_diags")
        if cache is not None:
            return cache
        out = []
        for d in a.diagnostics:
            ld = actions.to_lsp(d, lambda s: self.range(a, s), lambda s: self.location(a, s))
            if d.span is not None and d.span.file != a.file:
                imp = _import_leading_to(a, d.span.file)
                ld.range = self.range(a, imp.path_span if imp is not None else None)
                ld.message = f"in {d.span}: {ld.message}"
                ld.related_information = [lsp.DiagnosticRelatedInformation(
                    location=self.location(a, d.span), message=d.message)] + list(ld.related_information or [])
            out.append((d, ld))
        a.__dict__["_lsp_diags"] = out
        return out

    def _document(self, uri: str):
        """The open document (None once closed: get_text_document would make an empty one)."""
        if uri not in self.workspace.text_documents:
            return None
        return self.workspace.get_text_document(uri)

    # -- requests ----------------------------------------------------------------------------------------

    def store(self, a: Analysis) -> Path | None:
        roots = [Path(to_fs_path(f.uri) or "").resolve() for f in self.workspace.folders.values()]
        if self.workspace.root_path:
            roots.append(Path(self.workspace.root_path).resolve())
        return find_store(a.path, roots, self.store_setting)

    def at(self, a: Analysis, pos: lsp.Position):
        line, col = self.lines(a).from_position(pos)
        return a.index.at(a.file, line, col)


server = ExpcLanguageServer()


def _safe(fn):
    """A request that fails answers nothing (and logs why) instead of an error: the editor is
    usually showing a half-typed file, and the next keystroke asks again."""

    @functools.wraps(fn)
    async def wrapper(ls: ExpcLanguageServer, params):
        try:
            return await fn(ls, params)
        except asyncio.CancelledError:
            raise
        except Exception:
            ls.internal_error(f"{fn.__name__.strip('_')} failed", traceback.format_exc())
            return None

    return wrapper


@server.feature(lsp.INITIALIZE)
def _initialize(ls: ExpcLanguageServer, params: lsp.InitializeParams) -> None:
    opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
    if isinstance(opts.get("debounce"), (int, float)):
        ls.debounce = float(opts["debounce"])
    if isinstance(opts.get("store"), str):
        ls.store_setting = opts["store"]
    ls.worker.submit(lambda: ls.registry)  # load the operators while the editor starts up


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: ExpcLanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, 0)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def _did_change(ls: ExpcLanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, ls.debounce)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def _did_save(ls: ExpcLanguageServer, params: lsp.DidSaveTextDocumentParams) -> None:
    # other open files may import the saved one: their imports are read from disk, so check them again
    for uri in list(ls.analyses):
        if uri != params.text_document.uri:
            ls.stale.add(uri)
            ls.schedule(uri, 0)


@server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def _watched_files_changed(ls: ExpcLanguageServer, params: lsp.DidChangeWatchedFilesParams) -> None:
    # an .exp file changed on disk (saved elsewhere, a checkout): open files may import it
    for uri in list(ls.analyses):
        ls.stale.add(uri)
        ls.schedule(uri, ls.debounce)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: ExpcLanguageServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    task = ls.scheduled.pop(uri, None)
    if task is not None:
        task.cancel()
    ls.analyses.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
@_safe
async def _hover(ls: ExpcLanguageServer, params: lsp.HoverParams) -> lsp.Hover | None:
    a = await ls.current(params.text_document.uri)
    if a is None:
        return None
    occ = ls.at(a, params.position)
    if occ is None:
        return None
    store = ls.store(a) if occ.what in ("op", "decl", "ref") else None
    loop = asyncio.get_running_loop()
    # planning hashes the files a node reads: off the event loop, and off the checking thread
    text = await loop.run_in_executor(ls.store_worker, hover.hover, a, occ, ls.reader, store)
    if not text:
        return None
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text), range=ls.range(a, occ.span))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[".", "(", ",", "=", "\"", "/"]))
@_safe
async def _completion(ls: ExpcLanguageServer, params: lsp.CompletionParams) -> lsp.CompletionList | None:
    uri = params.text_document.uri
    a = ls.analyses.get(uri) or await ls.current(uri)
    doc = ls._document(uri)
    if doc is None:
        return None
    lines = Lines(doc.source, ls.units)
    line, col = lines.from_position(params.position)
    path = Path(to_fs_path(uri) or "untitled.exp").resolve()
    items = completion.complete(a, doc.source, line, col, ls.registry, path, params.position, ls.units)
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
@_safe
async def _definition(ls: ExpcLanguageServer, params: lsp.DefinitionParams):
    a = await ls.current(params.text_document.uri)
    occ = ls.at(a, params.position) if a is not None else None
    if occ is None:
        return None
    return navigation.definition(a, occ, lambda s: ls.range(a, s)) or None


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
@_safe
async def _references(ls: ExpcLanguageServer, params: lsp.ReferenceParams):
    a = await ls.current(params.text_document.uri)
    occ = ls.at(a, params.position) if a is not None else None
    if occ is None:
        return None
    return navigation.references(a, occ, params.context.include_declaration, lambda s: ls.range(a, s))


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@_safe
async def _symbols(ls: ExpcLanguageServer, params: lsp.DocumentSymbolParams):
    a = await ls.current(params.text_document.uri)
    if a is None:
        return None
    return navigation.document_symbols(a, lambda s: ls.range(a, s))


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
@_safe
async def _formatting(ls: ExpcLanguageServer, params: lsp.DocumentFormattingParams):
    doc = ls._document(params.text_document.uri)
    if doc is None:
        return None
    path = Path(to_fs_path(params.text_document.uri) or "untitled.exp")
    whole = Lines(doc.source, ls.units).whole()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(ls.worker, actions.formatting, doc.source, str(path), whole)


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
@_safe
async def _code_action(ls: ExpcLanguageServer, params: lsp.CodeActionParams):
    a = await ls.current(params.text_document.uri)
    if a is None:
        return None
    lines = ls.lines(a)

    def text_at(span: Span) -> str:
        return lines.line(span.line)[span.col - 1: span.end_col - 1] if span.end_line == span.line else ""

    own = [(d, ld) for d, ld in ls.diagnostics(a) if d.span is not None and d.span.file == a.file]
    return actions.quick_fixes(a.uri, own, text_at, params.range)


def _import_leading_to(a: Analysis, file: str) -> ast.Import | None:
    """The import statement of the document through which `file` is imported (maybe transitively)."""
    by_file = {m.file: m for m in a.modules}
    for stmt in a.module.stmts:
        if not isinstance(stmt, ast.Import):
            continue
        seen: set[str] = set()
        todo = [(a.path.parent / stmt.path).resolve()]
        while todo:
            p = todo.pop()
            name = display_path(p)
            if name == file:
                return stmt
            if name in seen or name not in by_file:
                continue
            seen.add(name)
            todo += [(p.parent / i.path).resolve() for i in by_file[name].stmts if isinstance(i, ast.Import)]
    return None


def _collect() -> None:
    """A full collection of everything frozen since the last one (any cycles it holds), then freeze."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def serve(debounce: float | None = None) -> int:
    """Run the server on stdin/stdout until the client exits."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="expc lsp: %(levelname)s %(message)s")
    if debounce is not None:
        server.debounce = debounce
    server.start_io()
    return 0
