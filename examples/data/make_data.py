"""Regenerate the two text sources shipped for the DEM example, from files that ship with Python
(PSF license): `python.txt`, source code of a few standard-library modules, and `prose.txt`, English
prose from the help topics of `pydoc_data.topics` (the text `help("FOR")` shows).

Both are split into examples by blank lines: read them with text(path, chunk = "paragraph").
The output depends on the Python version (3.11 generated the committed files).

    python examples/data/make_data.py
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGET = 150_000  # bytes per file: enough for a few hundred steps of a byte-level model, still small

MODULES = [
    "textwrap.py", "heapq.py", "bisect.py", "fnmatch.py", "shlex.py", "colorsys.py", "calendar.py",
    "string.py", "glob.py", "graphlib.py", "statistics.py", "fractions.py", "queue.py", "sched.py",
    "difflib.py", "csv.py", "dataclasses.py", "functools.py", "random.py", "enum.py",
]


def paragraphs(text: str) -> list[str]:
    out, cur = [], []
    for line in text.splitlines():
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            out.append("\n".join(cur))
            cur = []
    if cur:
        out.append("\n".join(cur))
    return out


def fill(chunks, budget: int) -> str:
    kept, size = [], 0
    for chunk in chunks:
        if size + len(chunk.encode()) + 2 > budget:
            break
        kept.append(chunk)
        size += len(chunk.encode()) + 2
    return "\n\n".join(kept) + "\n"


def main() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = (p for m in MODULES for p in paragraphs((stdlib / m).read_text(encoding="utf-8")))
    (HERE / "python.txt").write_text(fill(code, BUDGET), encoding="utf-8")

    from pydoc_data.topics import topics

    prose = (p for name in sorted(topics) for p in paragraphs(topics[name]) if len(p) > 80)
    (HERE / "prose.txt").write_text(fill(prose, BUDGET), encoding="utf-8")


if __name__ == "__main__":
    main()
