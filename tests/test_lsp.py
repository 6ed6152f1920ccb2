"""`expc lsp` end to end: the server runs as a subprocess and is driven over the real protocol
(pytest-lsp): documents are opened and edited as an editor would, and diagnostics, hover, completion,
definition, references, symbols, formatting and code actions are asserted on real programs, half-typed
statements and unclosed brackets included."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from conftest import EXAMPLES, ROOT
from expc.runtime.registry import load_registry

pytestmark = pytest.mark.asyncio(loop_scope="module")

README_PROGRAM = '''experiment dem_demo {
  seed = 0
  device = "auto"
}

param w ~ uniform(0, 1, default = 0.3)

data sums = arithmetic(n = 2000, digits = 3)
data parts = split(sums, test = 0.1)
model base = gpt2(layers = 2, width = 64, heads = 4, context = 64)
model tuned = finetune(base, parts.train, steps = 200, lr = 1e-3, batch = 16, context = 64)
merge dem = base + w * (tuned - base)
eval ppl = perplexity(dem, parts.test)

search sweep {
  objective = minimize(ppl)
  sampler = tpe(seed = 0)
  trials = 8
}

eval best = ppl(sweep.best)
'''


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "expc", "lsp"]),
                    scope="module")
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(), root_uri=ROOT.as_uri(),
        initialization_options={"debounce": 0.01}))
    yield
    await lsp_client.shutdown_session()


# -- helpers ------------------------------------------------------------------------------------------

_versions: dict[str, int] = {}


async def _published(client: LanguageClient, uri: str, send) -> list[lsp.Diagnostic]:
    """Send a notification and wait for the diagnostics of `uri` that answer it."""
    client.diagnostics.pop(uri, None)
    send()
    for _ in range(200):
        if uri in client.diagnostics:
            return list(client.diagnostics[uri])
        await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    raise AssertionError(f"no diagnostics for {uri}")


async def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> list[lsp.Diagnostic]:
    uri = path.as_uri()
    text = path.read_text() if text is None else text
    _versions[uri] = 1
    return await _published(client, uri, lambda: client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        text_document=lsp.TextDocumentItem(uri=uri, language_id="exp", version=1, text=text))))


async def edit(client: LanguageClient, path: Path, text: str,
               at: lsp.Range | None = None) -> list[lsp.Diagnostic]:
    """Replace the range `at` (the whole document when None) with `text`, as one change."""
    uri = path.as_uri()
    _versions[uri] += 1
    if at is None:
        change = lsp.TextDocumentContentChangeWholeDocument(text=text)
    else:
        change = lsp.TextDocumentContentChangePartial(range=at, text=text)
    return await _published(client, uri, lambda: client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=_versions[uri]),
        content_changes=[change])))


def close(client: LanguageClient, path: Path) -> None:
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(
        text_document=lsp.TextDocumentIdentifier(uri=path.as_uri())))


def pos(text: str, needle: str, offset: int = 0) -> lsp.Position:
    """The position of the first `needle` in text (plus `offset` characters)."""
    i = text.index(needle) + offset
    line = text.count("\n", 0, i)
    return lsp.Position(line=line, character=i - (text.rfind("\n", 0, i) + 1))


def at_offset(text: str, i: int) -> lsp.Position:
    line = text.count("\n", 0, i)
    return lsp.Position(line=line, character=i - (text.rfind("\n", 0, i) + 1))


def end_of(text: str) -> lsp.Position:
    return pos(text, text, len(text)) if text else lsp.Position(line=0, character=0)


async def hover_text(client: LanguageClient, path: Path, p: lsp.Position) -> str:
    h = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=path.as_uri()), position=p))
    return h.contents.value if h is not None else ""


async def completions(client: LanguageClient, path: Path, p: lsp.Position) -> list[lsp.CompletionItem]:
    r = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=path.as_uri()), position=p))
    items = r.items if isinstance(r, lsp.CompletionList) else (r or [])
    return sorted(items, key=lambda i: (i.sort_text or i.label, i.label))


def labels(items) -> list[str]:
    return [i.label for i in items]


def expc_check_json(path: Path) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "expc", "check", "--json", str(path)], capture_output=True,
                         text=True, cwd=ROOT)
    return json.loads(out.stdout)["diagnostics"]


@pytest.fixture
def program(tmp_path) -> Path:
    f = tmp_path / "demo.exp"
    f.write_text(README_PROGRAM)
    return f


# -- diagnostics ---------------------------------------------------------------------------------------


async def test_a_program_that_checks_has_no_diagnostics(client, program):
    assert await open_doc(client, program) == []
    close(client, program)


async def test_diagnostics_are_expc_checks_codes_ranges_hints_and_notes(client, tmp_path):
    f = tmp_path / "bad.exp"
    text = ("data x = splt(arithmetic(), test = 0.1)\n"
            "model m = gpt2(layers = 2, width = 64, heads = 4, context = 64)\n"
            "train t = finetune(m, x, stepz = 3, lr = 1e-3, batch = 4)\n"
            "model m = gpt2(layers = 2, width = 64, heads = 4, context = 64)\n")
    f.write_text(text)
    got = await open_doc(client, f)
    want = expc_check_json(f)
    assert [d.code for d in got] == [w["code"] for w in want] and len(want) >= 3
    for d, w in zip(got, want):
        s = w["span"]
        assert (d.range.start.line, d.range.start.character) == (s["line"] - 1, s["col"] - 1)
        assert (d.range.end.line, d.range.end.character) == (s["end_line"] - 1, s["end_col"] - 1)
        assert d.message.startswith(w["message"])
        if w["hint"]:
            assert f"hint: {w['hint']}" in d.message
        assert d.source == "expc"
        assert d.severity == lsp.DiagnosticSeverity.Error
        notes = [n for n in w["notes"] if n["span"]]
        assert [r.message for r in d.related_information or []] == [n["message"] for n in notes]
    twice = next(d for d in got if d.code == "E204")
    assert twice.related_information[0].location.range.start.line == 1  # "first declared here"
    close(client, f)


async def test_warnings_are_warnings(client, tmp_path):
    f = tmp_path / "warn.exp"
    text = "data a = arithmetic(n = 10)\ndata b = take(a, 100)\n"
    f.write_text(text)
    want = expc_check_json(f)
    got = await open_doc(client, f)
    assert [(d.code, d.severity) for d in got] == [
        (w["code"], lsp.DiagnosticSeverity.Warning if w["severity"] == "warning" else lsp.DiagnosticSeverity.Error)
        for w in want]
    close(client, f)


async def test_typing_updates_diagnostics_and_a_half_typed_statement_never_breaks_the_server(client, program):
    text = README_PROGRAM
    assert await open_doc(client, program, text) == []
    # type a new statement character by character (as one change per keystroke)
    typed = "eval p2 = perplexity(tuned, parts.test)"
    at = end_of(text)
    last: list = []
    for i, ch in enumerate(typed):
        p = lsp.Position(line=at.line, character=at.character + i)
        last = await edit(client, program, ch, lsp.Range(start=p, end=p))
    assert last == []
    # a half-typed call: one syntax error, at the end of the line
    half = text + "eval p3 = perplexity(tuned,\n"
    diags = await edit(client, program, half)
    assert [d.code for d in diags] == ["E103"]
    assert diags[0].range.start.line == half.count("\n") - 1
    # hover and completion still answer on the rest of the file
    assert "finetune" in await hover_text(client, program, pos(half, "finetune("))
    member = half + "  parts."
    await edit(client, program, member)
    assert labels(await completions(client, program, end_of(member))) == ["test", "train"]
    close(client, program)


async def test_an_unclosed_bracket_is_reported_before_the_next_statement(client, tmp_path):
    f = tmp_path / "open.exp"
    text = ("data a = arithmetic(n = 10)\n"
            "data b = take(a, 5\n"
            "model m = gpt2(layers = 2, width = 64, heads = 4, context = 64)\n"
            "eval p = perplexity(m, a)\n"
            "eval q = perplexity(m, b\n")
    f.write_text(text)
    got = await open_doc(client, f)
    want = expc_check_json(f)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in got] == [
        (w["code"], w["span"]["line"] - 1, w["span"]["col"] - 1) for w in want]
    assert [d.code for d in got] == ["E103", "E103"]
    assert "not closed before name 'model' at line 3" in got[0].message and got[0].range.start.line == 1
    assert got[1].range.start.line == 4
    # the statements that parse are still known: go to definition works on `a`, hover on `m`
    locs = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=f.as_uri()), position=pos(text, "a)\n")))
    assert [loc.range.start.line for loc in locs] == [0]
    assert "**model** `m`: model" in await hover_text(client, f, pos(text, "m, a"))
    close(client, f)


async def test_problems_in_an_import_are_shown_on_the_import(client, tmp_path):
    lib = tmp_path / "lib.exp"
    lib.write_text("data a = arithmetic(n = 10)\ndata b = tak(a, 5)\n")
    main = tmp_path / "main.exp"
    text = 'import "lib.exp"\ndata c = take(a, 2)\n'
    main.write_text(text)
    got = await open_doc(client, main)
    assert [d.code for d in got] == ["E206"]
    assert got[0].range.start.line == 0 and "lib.exp:2:10" in got[0].message
    assert got[0].related_information[0].location.uri == lib.as_uri()
    # fixing the import on disk and saving it: the importer is checked again
    lib.write_text("data a = arithmetic(n = 10)\ndata b = take(a, 5)\n")
    diags = await _published(client, main.as_uri(), lambda: client.text_document_did_save(
        lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=lib.as_uri()))))
    assert diags == []
    close(client, main)


# -- hover ---------------------------------------------------------------------------------------------


async def test_hover_on_an_operator_shows_what_expc_ops_shows(client, program):
    await open_doc(client, program)
    text = await hover_text(client, program, pos(README_PROGRAM, "finetune("))
    required = ", ".join(f.name for f in load_registry().get("finetune").fields if f.required)
    assert f"finetune({required}, ...) -> model" in text
    assert "Fine-tune a causal LM" in text
    ops = subprocess.run([sys.executable, "-m", "expc", "ops", "finetune"], capture_output=True, text=True,
                         cwd=ROOT).stdout
    field_lines = [ln for ln in ops.splitlines() if ln.startswith("  ") and "[" in ln and ":" in ln]
    assert len(field_lines) >= 10
    for ln in field_lines:
        assert ln in text
    # an argument's name: its field
    assert "steps: int  [required; >= 1]" in await hover_text(client, program, pos(README_PROGRAM, "steps ="))
    # a block's keyword is its operator
    assert "search(objective" in await hover_text(client, program, pos(README_PROGRAM, "search sweep"))
    close(client, program)


async def test_hover_on_names_and_params(client, program):
    await open_doc(client, program)
    text = await hover_text(client, program, pos(README_PROGRAM, "parts.train"))
    assert "**data** `parts`: split[data]" in text
    assert "data parts = split(sums, test = 0.1)" in text
    text = await hover_text(client, program, pos(README_PROGRAM, "w * ("))
    assert "**param** `w`: number ~ `uniform(0, 1, default = 0.3)`" in text and "default 0.3" in text
    text = await hover_text(client, program, pos(README_PROGRAM, "train, steps", 1))
    assert ".train: data" in text
    text = await hover_text(client, program, pos(README_PROGRAM, "seed = 0"))
    assert "seed: int" in text and "experiment setting" in text
    close(client, program)


# -- completion ----------------------------------------------------------------------------------------


async def test_completion(client, program):
    base = README_PROGRAM
    await open_doc(client, program, base)
    # statement keywords on an empty line
    assert {"experiment", "import", "param", "data", "model", "search"} <= set(
        labels(await completions(client, program, end_of(base))))
    # operators of the kind being declared, as snippets with their required fields
    text = base + "train t2 = "
    await edit(client, program, text)
    items = await completions(client, program, end_of(text))
    ft = next(i for i in items if i.label == "finetune")
    assert ft.insert_text_format == lsp.InsertTextFormat.Snippet
    required = [f.name for f in load_registry().get("finetune").fields if f.required]
    assert required[:3] == ["model", "data", "steps"]
    assert ft.text_edit.new_text == "finetune(${1:model}, ${2:data}, " + ", ".join(
        f"{name} = ${{{i}}}" for i, name in enumerate(required[2:], start=3)) + ")$0"
    assert labels(items).index("finetune") < labels(items).index("perplexity") if "perplexity" in labels(items) \
        else True
    assert "arithmetic" not in labels(items)[:5]
    # inside a call: models first for finetune's first field, and the field names with their types
    text = base + "train t2 = finetune("
    await edit(client, program, text)
    items = await completions(client, program, end_of(text))
    names = labels(items)
    assert names.index("base") < names.index("sums") and names.index("tuned") < names.index("sums")
    steps = next(i for i in items if i.label == "steps")
    assert steps.detail == "steps: int  [required; >= 1]" and steps.text_edit.new_text == "steps = "
    # a choice field offers its options
    text = base + 'train t2 = finetune(base, parts.train, optimizer = '
    await edit(client, program, text)
    assert {'"adamw"', '"adam"', '"sgd"'} <= set(labels(await completions(client, program, end_of(text))))
    # members
    text = base + "eval e = perplexity(base, parts."
    await edit(client, program, text)
    assert labels(await completions(client, program, end_of(text))) == ["test", "train"]
    # a block's fields, and values of a field's type
    text = base.replace("  trials = 8\n", "  trials = 8\n  \n")
    await edit(client, program, text)
    items = labels(await completions(client, program, pos(text, "  \n", 2)))
    assert "parallel" in items and "objective" not in items
    text = base.replace("sampler = tpe(seed = 0)", "sampler = ")
    await edit(client, program, text)
    items = labels(await completions(client, program, pos(text, "sampler = ", len("sampler = "))))
    assert {"tpe", "random", "grid"} <= set(items[:6])
    close(client, program)


# -- navigation ----------------------------------------------------------------------------------------


async def test_definition_references_and_symbols(client, program):
    text = README_PROGRAM
    await open_doc(client, program)
    uri = program.as_uri()
    locs = await client.text_document_definition_async(lsp.DefinitionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(text, "base + w")))
    assert [(l.uri, l.range.start.line, l.range.start.character) for l in locs] == [(uri, 9, 6)]
    refs = await client.text_document_references_async(lsp.ReferenceParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(text, "model base", 6),
        context=lsp.ReferenceContext(include_declaration=True)))
    assert sorted((r.range.start.line, r.range.start.character) for r in refs) == [
        (9, 6), (10, 23), (11, 12), (11, 32)]
    # a param bound by name in a re-instantiation refers to the param
    refs = await client.text_document_references_async(lsp.ReferenceParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=pos(text, "ppl(sweep"),
        context=lsp.ReferenceContext(include_declaration=False)))
    assert sorted(r.range.start.line for r in refs) == [15, 20]
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri)))
    assert [s.name for s in symbols] == ["dem_demo", "w", "sums", "parts", "base", "tuned", "dem", "ppl", "sweep",
                                         "best"]
    sweep = next(s for s in symbols if s.name == "sweep")
    assert [c.name for c in sweep.children] == ["objective", "sampler", "trials"]
    assert "split[data]" in next(s for s in symbols if s.name == "parts").detail
    close(client, program)


async def test_definition_of_an_import_and_of_its_names(client, tmp_path):
    lib = tmp_path / "lib.exp"
    lib.write_text("data a = arithmetic(n = 10)\n")
    main = tmp_path / "main.exp"
    text = 'import "lib.exp"\ndata c = take(a, 2)\n'
    main.write_text(text)
    await open_doc(client, main)
    uri = main.as_uri()
    for p in (pos(text, "lib.exp"), pos(text, "a, 2")):
        locs = await client.text_document_definition_async(lsp.DefinitionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=p))
        assert [(l.uri, l.range.start.line) for l in locs] == [(lib.as_uri(), 0)]
    close(client, main)


# -- formatting and code actions ------------------------------------------------------------------------


async def test_formatting_is_expc_fmt(client, tmp_path):
    f = tmp_path / "ugly.exp"
    text = "data  a=arithmetic( n=10 )\n\n\n\nmodel m=gpt2(layers=2,width=64,heads=4,context=64) # tiny\n"
    f.write_text(text)
    await open_doc(client, f)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=f.as_uri()),
        options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
    subprocess.run([sys.executable, "-m", "expc", "fmt", str(f)], check=True, capture_output=True, cwd=ROOT)
    assert len(edits) == 1 and edits[0].new_text == f.read_text()
    assert edits[0].range.start == lsp.Position(line=0, character=0)
    # a file that does not parse is not formatted
    await edit(client, f, "data a = arithmetic(\n")
    assert not await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=lsp.TextDocumentIdentifier(uri=f.as_uri()),
        options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
    close(client, f)


async def test_a_quick_fix_for_every_did_you_mean(client, tmp_path):
    f = tmp_path / "typos.exp"
    text = ("experiment e { sede = 1 }\n"
            "data sums = arithmetic(n = 10)\n"
            "data parts = splt(sums, test = 0.5)\n"
            "modle m = gpt2(layers = 2, width = 64, heads = 4, context = 64)\n"
            "model base = gpt2(layers = 2, width = 64, heads = 4, context = 64)\n"
            "model t = finetune(base, sums, stepz = 2, lr = 1e-3, batch = 2)\n"
            "data ok = split(sums, test = 0.5)\n"
            "eval p = perplexity(bse, ok.test)\n"
            "eval q = perplexity(base, ok.tset)\n")
    f.write_text(text)
    diags = await open_doc(client, f)
    hinted = [d for d in diags if "did you mean" in d.message]
    assert {d.code for d in hinted} >= {"E402", "E206", "E202", "E201", "E208"}
    fixed = text
    for d in hinted:
        actions = await client.text_document_code_action_async(lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=f.as_uri()), range=d.range,
            context=lsp.CodeActionContext(diagnostics=[d])))
        assert actions, d.message
        a = actions[0]
        assert a.kind == lsp.CodeActionKind.QuickFix and a.is_preferred
        (te,) = a.edit.changes[f.as_uri()]
        assert te.range == d.range
        line = fixed.split("\n")[te.range.start.line]
        fixed_line = line[:te.range.start.character] + te.new_text + line[te.range.end.character:]
        fixed = fixed.replace(line, fixed_line, 1)
    for wrong, right in (("sede", "seed"), ("splt", "split"), ("modle", "model"), ("bse", "base"),
                         ("stepz", "steps"), ("tset", "test")):
        assert wrong not in fixed and right in fixed
    close(client, f)


# -- cached results ------------------------------------------------------------------------------------


async def test_hover_shows_a_cached_result_after_a_run(client, tmp_path):
    f = tmp_path / "small.exp"
    text = ("data sums = arithmetic(n = 50, digits = 2)\n"
            "data parts = split(sums, test = 0.2)\n"
            "data few = take(parts.train, 5)\n"
            "data more = take(split(sums, test = 0.5).test, 7)\n")
    f.write_text(text)
    run = subprocess.run([sys.executable, "-m", "expc", "run", str(f), "--cache", str(tmp_path / ".expc")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    await open_doc(client, f)
    h = await hover_text(client, f, pos(text, "few ="))
    assert "cached result" in h and "n=5 examples" in h and "run 1 ran" in h
    h = await hover_text(client, f, pos(text, "split("))
    assert "cached result" in h and "train n=40" in h
    h = await hover_text(client, f, pos(text, "split(sums, test = 0.5)"))  # an anonymous node
    assert "cached result" in h and "train n=25" in h
    # a changed argument changes the key: nothing cached for it
    await edit(client, f, text.replace("5)", "6)"))
    assert "cached result" not in await hover_text(client, f, pos(text, "few ="))
    close(client, f)


async def test_random_edits_never_break_the_server(client, tmp_path):
    """Half-typed text everywhere: after every edit, diagnostics arrive, and hover, completion,
    definition, references, symbols and formatting answer without an error (the server logs its
    internal errors to the client: there must be none)."""
    import random

    rng = random.Random(1)
    f = tmp_path / "dem.exp"
    text = (EXAMPLES / "dem.exp").read_text()
    shutil.copytree(EXAMPLES / "data", tmp_path / "data")
    f.write_text(text)
    await open_doc(client, f, text)
    uri = f.as_uri()
    doc = lsp.TextDocumentIdentifier(uri=uri)
    logged = len(client.log_messages)
    for _ in range(40):
        i = rng.randrange(len(text) + 1)
        cut = rng.randint(0, 3)
        new = rng.choice(["", "(", ")", "{", "}", ",", ".", "=", "x", "\"", "#", "\n", "data q = ", "base."])
        at = lsp.Range(start=at_offset(text, i), end=at_offset(text, min(i + cut, len(text))))
        text = text[:i] + new + text[i + cut:]
        await edit(client, f, new, at)
        p = at_offset(text, rng.randrange(len(text) + 1))
        await client.text_document_hover_async(lsp.HoverParams(text_document=doc, position=p))
        await client.text_document_completion_async(lsp.CompletionParams(text_document=doc, position=p))
        await client.text_document_definition_async(lsp.DefinitionParams(text_document=doc, position=p))
        await client.text_document_references_async(lsp.ReferenceParams(
            text_document=doc, position=p, context=lsp.ReferenceContext(include_declaration=True)))
    await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=doc))
    await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        text_document=doc, options=lsp.FormattingOptions(tab_size=2, insert_spaces=True)))
    errors = [m.message for m in client.log_messages[logged:] if m.type == lsp.MessageType.Error]
    assert not errors, errors[0]
    close(client, f)


async def test_the_language_server_imports_nothing_heavy(tmp_path):
    """Checking, hovering (with a store to read), completing and formatting dem.exp, in one process:
    no torch, transformers, gymnasium, optuna, ray or matplotlib."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from lsprotocol import types as lsp\n"
        "from expc.interpreter.lsp import actions, completion, hover, navigation\n"
        "from expc.interpreter.lsp.analysis import analyze\n"
        "from expc.interpreter.lsp.cached import ResultReader\n"
        "from expc.interpreter.lsp.incremental import StatementParser\n"
        "from expc.interpreter.lsp.positions import Lines, utf16_units\n"
        "from expc.runtime.registry import load_registry\n"
        "reg = load_registry()\n"
        f"path = Path({str(EXAMPLES / 'dem.exp')!r})\n"
        f"store = Path({str(tmp_path / 'store')!r}); (store / 'objects').mkdir(parents=True)\n"
        "text = path.read_text()\n"
        "a = analyze(path.as_uri(), path, text, 1, reg, StatementParser())\n"
        "assert a.program is not None, a.diagnostics\n"
        "reader = ResultReader(reg)\n"
        "shown = [hover.hover(a, o, reader, store) for occs in a.index.occurrences.values() for o in occs]\n"
        "assert sum(1 for h in shown if h) > 100\n"
        "lines = Lines(text)\n"
        "for n in range(1, len(lines.lines) + 1):\n"
        "    end = len(lines.line(n))\n"
        "    completion.complete(a, text, n, end + 1, reg, path, lsp.Position(line=n - 1, character=end), "
        "utf16_units)\n"
        "navigation.document_symbols(a, lines.range)\n"
        "actions.formatting(text, str(path), lines.whole())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'gymnasium', "
        "'optuna', 'ray', 'matplotlib', 'safetensors'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
