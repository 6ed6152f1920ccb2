"""Diagnostics latency of `expc lsp` after an edit (goals: < 50 ms on examples/dem.exp, < 1 s on the
generated 5,000-statement spec of benchmarks/check_speed.py).

The server runs as a subprocess driven over the real protocol (pygls's client). For each file: open it,
then make edits and time each from sending `didChange` to receiving the diagnostics of that version
(the server's default quiet period after an edit, 25 ms, included):
  - a value changed inside a line (the common keystroke: no statement moves);
  - a line inserted at the top (every statement below moves);
  - a statement left half-typed (the file does not parse), then completed again.
Baselines measured in the same run: a cold `expc check` of the same file, and an in-process `compile`
of the same text (what the server would do without reusing unchanged statements). This machine is
noisy: read the ratios, and the medians.

    python benchmarks/lsp.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_speed import generated_spec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class Client(LanguageClient):
    def __init__(self) -> None:
        super().__init__("expc-lsp-benchmark", "1")
        self.waiting: dict[tuple[str, int], asyncio.Future] = {}
        self.published: dict[str, list] = {}

        @self.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.published[params.uri] = params.diagnostics
            fut = self.waiting.pop((params.uri, params.version), None)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())


class Doc:
    def __init__(self, client: Client, path: Path, text: str):
        self.client, self.uri, self.text, self.version = client, path.as_uri(), text, 1

    def _expect(self) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.client.waiting[(self.uri, self.version)] = fut
        return fut

    async def open(self) -> float:
        fut = self._expect()
        t = time.perf_counter()
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=self.uri, language_id="exp", version=1, text=self.text)))
        return await asyncio.wait_for(fut, 120) - t

    async def change(self, start: tuple[int, int], end: tuple[int, int], new: str) -> float:
        """Replace text from start to end ((line, character), 0-based) and time the diagnostics."""
        lines = self.text.split("\n")
        a = sum(len(x) + 1 for x in lines[: start[0]]) + start[1]
        b = sum(len(x) + 1 for x in lines[: end[0]]) + end[1]
        self.text = self.text[:a] + new + self.text[b:]
        self.version += 1
        fut = self._expect()
        rng = lsp.Range(start=lsp.Position(line=start[0], character=start[1]),
                        end=lsp.Position(line=end[0], character=end[1]))
        t = time.perf_counter()
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[lsp.TextDocumentContentChangePartial(range=rng, text=new)]))
        return await asyncio.wait_for(fut, 120) - t

    def close(self) -> None:
        self.client.text_document_did_close(lsp.DidCloseTextDocumentParams(
            text_document=lsp.TextDocumentIdentifier(uri=self.uri)))


def _find(text: str, needle: str) -> tuple[int, int]:
    i = text.index(needle)
    line = text.count("\n", 0, i)
    return line, i - (text.rfind("\n", 0, i) + 1)


async def measure(client: Client, path: Path, text: str, value: str, repeat: int) -> dict[str, float]:
    """Median latencies (seconds) of each kind of edit on one file."""
    doc = Doc(client, path, text)
    out = {"open": await doc.open()}
    within, inserted, broken, fixed = [], [], [], []
    for i in range(repeat):
        line, col = _find(doc.text, value)  # e.g. "n = 4000": change the number, same length
        old = value.split("=")[1].strip()
        new = str(int(old) + (1 if i % 2 == 0 else -1))
        col += value.index(old)
        within.append(await doc.change((line, col), (line, col + len(old)), new))
        value = value.replace(old, new)
        inserted.append(await doc.change((0, 0), (0, 0), "\n") if i % 2 == 0 else
                        await doc.change((0, 0), (1, 0), ""))
        # half-type a statement at the end, then complete it
        end_line = doc.text.count("\n")
        broken.append(await doc.change((end_line, 0), (end_line, 0), "eval zz = perplexity(\n"))
        fixed.append(await doc.change((end_line, 0), (end_line + 1, 0), ""))
    doc.close()
    out.update({"edit in a line": statistics.median(within), "insert a line at the top": statistics.median(inserted),
                "half-typed statement": statistics.median(broken), "statement removed again": statistics.median(fixed)})
    return out


def cold_check(path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "expc", "check", str(path)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_process_compile(path: Path, text: str, repeat: int) -> float:
    from expc.interpreter.compiler import compile
    from expc.runtime.registry import load_registry
    from expc.spec.diagnostics import CompileError

    reg = load_registry()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        try:
            compile(path, reg, text=text)
        except CompileError:
            pass
        times.append(time.perf_counter() - t)
    return statistics.median(times)


async def main_async(repeat: int) -> None:
    client = Client()
    await client.start_io(sys.executable, "-m", "expc", "lsp", cwd=str(ROOT))
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities(),
                                                       root_uri=ROOT.as_uri()))
    client.initialized(lsp.InitializedParams())
    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as d:
        dem = ROOT / "examples" / "dem.exp"
        big = Path(d) / "big.exp"
        big.write_text(generated_spec(5000))
        for path, value, n in ((dem, "n = 4000", repeat), (big, "n = 100", max(3, repeat // 2))):
            text = path.read_text()
            name = path.name + (f" ({text.count(chr(10))} lines)" if path == big else "")
            lat = await measure(client, path, text, value, n)
            rows.append((name, "baseline: cold `expc check`", cold_check(path, 3)))
            rows.append((name, "baseline: in-process compile of the text", in_process_compile(path, text, 3)))
            for what, s in lat.items():
                rows.append((name, f"lsp: {what}", s))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()

    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    print(f"{'file'.ljust(w1)}  {'measurement'.ljust(w2)}  {'ms':>8}  {'x compile':>9}")
    print(f"{'-' * w1}  {'-' * w2}  {'-' * 8}  {'-' * 9}")
    base = {}
    for f, what, s in rows:
        if "in-process compile" in what:
            base[f] = s
    for f, what, s in rows:
        print(f"{f.ljust(w1)}  {what.ljust(w2)}  {s * 1000:8.1f}  {s / base[f]:9.2f}")
    print("\nlsp rows: didChange sent -> publishDiagnostics of that version received (includes the 25 ms "
          "quiet period); medians.\ngoals: dem.exp < 50 ms, 5,000 statements < 1 s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    asyncio.run(main_async(args.repeat))


if __name__ == "__main__":
    main()
