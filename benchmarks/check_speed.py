"""How fast the language tools start and check (issue: cold `expc check` < 0.5 s; 5,000 statements < 2 s).

Prints one table; baselines are measured in the same run (this machine is noisy: read the ratios):
  - cold start of a bare `python -c pass`, and of `python -c "import lark, pydantic"`;
  - cold `expc check` on an example, `expc fmt --check` and `expc graph` on it;
  - in-process `compile` of a generated 5,000-statement spec, and its parse alone.

    python benchmarks/check_speed.py [--repeat 5] [--against DIR]

--against DIR compares with another checkout of expc (an older commit: `git worktree add DIR COMMIT`,
installed in its own virtual environment DIR/.venv or given with --against-python): cold `expc
check` of the same example by both, runs alternating, medians side by side with their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cold(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def generated_spec(n: int) -> str:
    lines = ['experiment big { seed = 0 }', "param n = 100"]
    per = 4
    for i in range((n - 2) // per):
        lines.append(f"param w{i} ~ uniform(0, 1, default = 0.5)")
        lines.append(f"data a{i} = arithmetic(n = n + {i}, digits = 2, seed = {i})")
        lines.append(f"data s{i} = split(a{i}, test = 0.1, seed = {i})")
        lines.append(f"data t{i} = take(s{i}.train, 10)  # comment {i}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", type=Path, help="another checkout of expc to compare cold checks with")
    ap.add_argument("--against-python", help="its interpreter (default: DIR/.venv/bin/python)")
    args = ap.parse_args()
    if args.against is not None:
        compare(args)
        return
    py = sys.executable
    example = next(iter(sorted((ROOT / "examples").glob("*.exp"))), None)
    rows = []
    base_py = cold([py, "-c", "pass"], args.repeat)
    base_imports = cold([py, "-c", "import lark, pydantic"], args.repeat)
    rows.append(("python -c pass (baseline)", base_py))
    rows.append(("python -c 'import lark, pydantic' (baseline)", base_imports))
    if example is not None:
        rel = example.relative_to(ROOT)
        rows.append((f"expc check {rel} (cold)", cold([py, "-m", "expc", "check", str(rel)], args.repeat)))
        rows.append((f"expc fmt --check {rel} (cold)", cold([py, "-m", "expc", "fmt", "--check", str(rel)], args.repeat)))
        rows.append((f"expc graph {rel} (cold)", cold([py, "-m", "expc", "graph", str(rel)], args.repeat)))

    text = generated_spec(5000)
    n_stmts = text.count("\n")
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "big.exp"
        f.write_text(text)
        from expc.interpreter.compiler import compile
        from expc.runtime.registry import load_registry
        from expc.spec.parser import _lark

        load_registry()
        lark = _lark()
        t = time.perf_counter()
        lark.parse(text, "big.exp", [])
        bare = time.perf_counter() - t
        times = []
        for _ in range(max(1, args.repeat // 2)):
            t = time.perf_counter()
            program = compile(f).program
            times.append(time.perf_counter() - t)
        rows.append((f"parse only (lexer + LALR + AST), {n_stmts} statements", bare))
        rows.append((f"compile (parse + check), {n_stmts} statements, {len(program.nodes)} nodes",
                     statistics.median(times)))
        rows.append((f"expc check big.exp (cold, {n_stmts} statements)", cold([py, "-m", "expc", "check", str(f)], 1)))

    w = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(w)}  {'seconds':>8}  {'x python -c pass':>16}")
    print(f"{'-' * w}  {'-' * 8}  {'-' * 16}")
    for name, s in rows:
        print(f"{name.ljust(w)}  {s:8.3f}  {s / base_py:16.2f}")
    print("\ngoals: cold `expc check` of an example < 0.5 s; 5,000-statement check < 2 s (2 cores)")


def compare(args) -> None:
    """Cold `expc check examples/dem.exp` here and in another checkout, alternating, same example text."""
    other_py = args.against_python or str(args.against / ".venv" / "bin" / "python")
    runs = {"this checkout": (sys.executable, ROOT), f"{args.against}": (other_py, args.against)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for i in range(max(3, args.repeat)):
        for name in (list(runs) if i % 2 == 0 else list(reversed(runs))):
            py, root = runs[name]
            t = time.perf_counter()
            r = subprocess.run([py, "-m", "expc", "check", "examples/dem.exp"], cwd=root, capture_output=True)
            times[name].append(time.perf_counter() - t)
            if r.returncode != 0:
                raise SystemExit(f"{name}: expc check failed: {r.stderr.decode()[-500:]}")
    base = statistics.median(times[f"{args.against}"])
    print(f"cold `expc check examples/dem.exp`, {max(3, args.repeat)} alternating runs each")
    print(f"{'checkout':<40}  {'median s':>8}  {'min s':>6}  {'ratio':>5}")
    for name, ts in times.items():
        print(f"{name:<40}  {statistics.median(ts):8.3f}  {min(ts):6.3f}  {statistics.median(ts) / base:5.2f}")


if __name__ == "__main__":
    main()
