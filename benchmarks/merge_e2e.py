"""End-to-end merge speed as a user sees it: the `expc run` command against mergekit's CLI.

    python benchmarks/merge_e2e.py [--repeat 3] [--size-mb 1024] [--mergekit PATH] [--keep DIR]

Three random Llama-architecture models (float32, one safetensors file each, ~1.07 GB by default) are
generated locally and read once, so they sit in the page cache. Each repetition runs these commands as
subprocesses, each after os.sync(), mergekit first in even repetitions and last in odd ones:

  mergekit      mergekit-yaml config.yml OUT   (task_arithmetic: base + 0.5*(m1-base) + 0.3*(m2-base))
  expc first    expc run p.exp --save ta=OUT, fresh store: hashes the inputs, merges, saves
  expc cached   the same command again: every node cached (and every input's digest)
  expc edit     p.exp with the merge weight edited (0.5 -> 0.45), the same command: one merge reruns

Reported: the median wall time, the median CPU time (user + system: less disturbed by other jobs on
a shared machine than wall time) and the largest max RSS of each, and the ratios to mergekit measured
in the same run; then the parts of a first run measured here too: hashing the three
inputs (BLAKE3, as now, against blake2b, as before), `import torch`, and copying the merged directory
(as --save did) against linking it (as it does now). The outputs of expc and mergekit are compared.

mergekit goes in a venv of its own (its pins differ from expc's). Check first that it resolves to the
CPU torch (`pip install --dry-run torch==2.13.0 mergekit==0.1.5` lists torch-2.13.0+cpu and no nvidia
packages), then `python -m venv /tmp/mk && /tmp/mk/bin/pip install torch==2.13.0 mergekit==0.1.5` and
pass `--mergekit /tmp/mk/bin/mergekit-yaml` (default: mergekit-yaml on PATH; without it the mergekit
column is skipped with a note). Not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from expc.runtime.merge.safetensors_io import OutSpec, ShardedWriter

MB = 1024 * 1024
PROGRAM = """\
experiment e2e {{ seed = 0 }}
param w1 = {w1}
model base = pretrained("models/base")
model m1 = pretrained("models/m1")
model m2 = pretrained("models/m2")
merge ta = base + w1 * (m1 - base) + 0.3 * (m2 - base)
"""
# Absolute paths: mergekit asks the Hugging Face hub about a path like "models/base" (one slash).
MERGEKIT = """\
merge_method: task_arithmetic
base_model: {models}/base
models:
  - model: {models}/m1
    parameters: {{weight: 0.5}}
  - model: {models}/m2
    parameters: {{weight: 0.3}}
dtype: float32
"""


# ------------------------------------------------------------------------------------------- models


def llama_layout(size_mb: int) -> tuple[dict, list[OutSpec]]:
    """A Llama config and its tensors, about size_mb MiB of float32."""
    h, inter, vocab = (1024, 2816, 32000) if size_mb >= 400 else (256, 704, 8000)
    per_layer = 4 * (4 * h * h + 3 * h * inter + 2 * h)
    fixed = 4 * (2 * vocab * h + h)
    layers = max(1, round((size_mb * MB - fixed) / per_layer))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": 16,
        "num_key_value_heads": 16, "vocab_size": vocab, "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
        "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2,
    }  # fmt: skip
    specs = [OutSpec("model.embed_tokens.weight", "F32", (vocab, h))]
    for i in range(layers):
        p = f"model.layers.{i}"
        specs += [OutSpec(f"{p}.self_attn.{n}_proj.weight", "F32", (h, h)) for n in "qkvo"]
        specs += [OutSpec(f"{p}.mlp.gate_proj.weight", "F32", (inter, h)),
                  OutSpec(f"{p}.mlp.up_proj.weight", "F32", (inter, h)),
                  OutSpec(f"{p}.mlp.down_proj.weight", "F32", (h, inter)),
                  OutSpec(f"{p}.input_layernorm.weight", "F32", (h,)),
                  OutSpec(f"{p}.post_attention_layernorm.weight", "F32", (h,))]  # fmt: skip
    specs += [OutSpec("model.norm.weight", "F32", (h,)), OutSpec("lm_head.weight", "F32", (vocab, h))]
    return config, specs


def write_model(path: Path, config: dict, specs: list[OutSpec], seed: int) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    rng = np.random.default_rng(seed)
    w = ShardedWriter(path, specs, max_shard_bytes=1 << 40)  # one model.safetensors
    for s in specs:
        if len(s.shape) == 1:
            w.write(s.name, np.ones(s.shape, dtype=np.float32))
        else:
            w.write(s.name, (rng.standard_normal(s.shape, dtype=np.float32) * 0.02).reshape(-1))
    w.close()
    write_tokenizer(path)


def write_tokenizer(path: Path) -> None:
    """A small word-level tokenizer (a real model ships one, and mergekit copies it to its output by
    default: without one it loses time failing to)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(997)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>", "bos_token": "<s>",
        "eos_token": "</s>", "model_max_length": 2048}))


def warm(path: Path) -> None:
    for f in sorted(path.rglob("*")):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(64 * MB):
                    pass


# --------------------------------------------------------------------------------------------- runs


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def use_bytecode(cache: Path) -> None:
    """Let the commands cache bytecode, as an installed expc or mergekit does (some sandboxes set
    PYTHONDONTWRITEBYTECODE, which makes every start compile expc from source); the caches go under
    the benchmark's directory, not next to the sources."""
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(cache)


GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def timed(cmd: list[str], cwd: Path, log: Path) -> dict:
    """Wall time, CPU time (user + system) and max RSS of one command (a fresh process), after
    os.sync(). The command is started by GNU time where there is one: a child's ru_maxrss starts from
    its parent's peak at fork(), and this process's peak (hashing, generating models) would show."""
    os.sync()
    usage_file = log.with_suffix(".usage")
    wrapped = [GNU_TIME, "-o", str(usage_file), "-f", "%M %U %S", *cmd] if GNU_TIME else cmd
    with open(log, "wb") as out:
        t = time.perf_counter()
        p = subprocess.Popen(wrapped, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=ENV)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
    if GNU_TIME:
        rss_kb, user, system = usage_file.read_text().split()[-3:]
        return {"wall": wall, "rss_mb": int(rss_kb) / 1024, "cpu": float(user) + float(system)}
    return {"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime}


def expc_cmd() -> list[str]:
    script = Path(sys.executable).parent / "expc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "expc"]


def expc_sequence(work: Path, runs: dict[str, list[dict]]) -> None:
    """first run on a fresh store, a rerun with everything cached, a rerun after editing the weight."""
    store, out = work / "store", work / "out_expc"
    shutil.rmtree(store, ignore_errors=True)
    cmd = [*expc_cmd(), "run", "p.exp", "--cache", str(store), "--save", f"ta={out}"]
    (work / "p.exp").write_text(PROGRAM.format(w1=0.5))
    runs["expc first"].append(timed(cmd, work, work / "expc_first.log"))
    runs["expc cached"].append(timed(cmd, work, work / "expc_cached.log"))
    (work / "p.exp").write_text(PROGRAM.format(w1=0.45))
    runs["expc edit"].append(timed(cmd, work, work / "expc_edit.log"))
    assert "0 ran" in (work / "expc_cached.log").read_text(), (work / "expc_cached.log").read_text()
    assert "1 ran" in (work / "expc_edit.log").read_text(), (work / "expc_edit.log").read_text()


def compare(expc_out: Path, mk_out: Path) -> float:
    """Largest absolute difference between the two merged models (every tensor)."""
    from safetensors import safe_open

    def tensors(d: Path) -> dict:
        out = {}
        for f in sorted(d.glob("*.safetensors")):
            with safe_open(str(f), "numpy") as st:
                for k in st.keys():
                    out[k] = f
        return out

    a, b = tensors(expc_out), tensors(mk_out)
    assert set(a) == set(b), sorted(set(a) ^ set(b))[:5]
    worst = 0.0
    for k in sorted(a):
        with safe_open(str(a[k]), "numpy") as sa, safe_open(str(b[k]), "numpy") as sb:
            worst = max(worst, float(np.abs(sa.get_tensor(k) - sb.get_tensor(k)).max()))
    return worst


# ------------------------------------------------------------------------------------------- components


def hash_blake2b(paths: list[Path]) -> float:
    """The file hash before this benchmark's issue: blake2b, one thread, 1 MiB reads."""
    t = time.perf_counter()
    for p in paths:
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            d = hashlib.blake2b(digest_size=16)
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    d.update(chunk)
    return time.perf_counter() - t


def hash_blake3(paths: list[Path]) -> float:
    from expc.interpreter.hashing import FileHasher

    t = time.perf_counter()
    h = FileHasher()  # no cache: every file is read
    for p in paths:
        h.path(str(p))
    return time.perf_counter() - t


def save_copy_vs_link(store_root: Path, work: Path) -> tuple[float, float]:
    """--save of the last run's merged model: copied (as before) and linked (as now)."""
    from expc.interpreter.store import Store

    store = Store(store_root)
    last = max((store_root / "runs").iterdir(), key=lambda p: int(p.name))
    src = (last / "ta").resolve()
    os.sync()
    t = time.perf_counter()
    shutil.copytree(src, work / "saved_copy", symlinks=False)
    copy_s = time.perf_counter() - t
    shutil.rmtree(work / "saved_copy")
    os.sync()
    t = time.perf_counter()
    how = store.export(src, work / "saved_link")
    link_s = time.perf_counter() - t
    assert "copied" not in how, how
    shutil.rmtree(work / "saved_link")
    return copy_s, link_s


def cold(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - t


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (medians are reported)")
    ap.add_argument("--size-mb", type=int, default=1024, help="MiB of float32 weights per model")
    ap.add_argument("--mergekit", default=shutil.which("mergekit-yaml"), help="path of mergekit-yaml")
    ap.add_argument("--keep", default=None, help="generate models under this directory and keep them")
    ap.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as it is set")
    a = ap.parse_args()
    root = Path(a.keep or tempfile.mkdtemp(prefix="expc-merge-e2e-"))
    if not a.no_bytecode:
        use_bytecode(root / "pycache")
    work = root / "work"
    models = work / "models"
    config, specs = llama_layout(a.size_mb)
    nbytes = sum(s.nbytes for s in specs)
    names = ["expc first", "expc cached", "expc edit"]
    if a.mergekit:
        names.insert(0, "mergekit")
    runs: dict[str, list[dict]] = {k: [] for k in names}
    parts: dict[str, list[float]] = {k: [] for k in ("blake2b", "blake3", "torch", "pass", "copy", "link")}
    worst = None
    try:
        work.mkdir(parents=True, exist_ok=True)
        for i, n in enumerate(("base", "m1", "m2")):
            if not (models / n / "model.safetensors").exists():
                write_model(models / n, config, specs, seed=i)
            if not (models / n / "tokenizer.json").exists():
                write_tokenizer(models / n)
            warm(models / n)
        (work / "config.yml").write_text(MERGEKIT.format(models=models.resolve()))
        # warm-up: bytecode caches written, shared libraries read once, before anything is timed
        cold([sys.executable, "-c", "import expc.cli, expc.interpreter.session, expc.runtime.merge.engine, "
                                    "expc.runtime.ops.merge, torch, safetensors"])
        if a.mergekit:
            mk_python = str(Path(a.mergekit).parent / "python")
            cold([mk_python, "-c", "import mergekit.merge, mergekit.scripts.run_yaml, torch"] if
                 Path(mk_python).exists() else [a.mergekit, "--help"])
        for r in range(a.repeat):
            order = ["mergekit", "expc"] if r % 2 == 0 else ["expc", "mergekit"]
            for what in order:
                if what == "mergekit" and a.mergekit:
                    shutil.rmtree(work / "out_mk", ignore_errors=True)
                    runs["mergekit"].append(timed([a.mergekit, "config.yml", str(work / "out_mk")], work,
                                                  work / "mergekit.log"))
                elif what == "expc":
                    expc_sequence(work, runs)
            if worst is None and a.mergekit:
                (work / "p.exp").write_text(PROGRAM.format(w1=0.5))  # the first run's output, w1 = 0.5
                subprocess.run([*expc_cmd(), "run", "p.exp", "--cache", str(work / "store"), "--save",
                                f"ta={work / 'out_expc'}"], cwd=work, check=True, capture_output=True)
                worst = compare(work / "out_expc", work / "out_mk")
            parts["blake2b"].append(hash_blake2b([models / n for n in ("base", "m1", "m2")]))
            parts["blake3"].append(hash_blake3([models / n for n in ("base", "m1", "m2")]))
            parts["torch"].append(cold([sys.executable, "-c", "import torch, safetensors"]))
            parts["pass"].append(cold([sys.executable, "-c", "pass"]))
            c, ln = save_copy_vs_link(work / "store", work)
            parts["copy"].append(c)
            parts["link"].append(ln)
            for d in ("store", "out_expc", "out_mk"):
                shutil.rmtree(work / d, ignore_errors=True)
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for d in ("store", "out_expc", "out_mk"):
                shutil.rmtree(work / d, ignore_errors=True)

    med = {k: statistics.median(x["wall"] for x in v) for k, v in runs.items()}
    cpu = {k: statistics.median(x["cpu"] for x in v) for k, v in runs.items()}
    rss = {k: max(x["rss_mb"] for x in v) for k, v in runs.items()}
    print(f"three Llama-architecture models of {nbytes / 1e9:.2f} GB (float32, one safetensors file each), "
          f"page cache warm; {os.cpu_count()} CPU cores; medians of {a.repeat} alternating runs\n")
    head = ("command", "wall s (median)", "runs", "CPU s (median)", "max RSS MB", "vs mergekit (wall)",
            "vs mergekit (CPU)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    labels = {
        "mergekit": "mergekit-yaml (task_arithmetic)",
        "expc first": "expc run --save, first run (fresh store)",
        "expc cached": "expc run --save, rerun, everything cached",
        "expc edit": "expc run --save, rerun after editing the merge weight",
    }
    for k in runs:
        each = " / ".join(f"{x['wall']:.1f}" for x in runs[k])
        if "mergekit" not in med:
            vs = vs_cpu = "-"
        elif k == "mergekit":
            vs = vs_cpu = "1.0x"
        else:
            vs, vs_cpu = f"{med['mergekit'] / med[k]:.1f}x faster", f"{cpu['mergekit'] / cpu[k]:.1f}x less"
        print(f"| {labels[k]} | {med[k]:.2f} | {each} | {cpu[k]:.2f} | {rss[k]:.0f} | {vs} | {vs_cpu} |")
    if not a.mergekit:
        print("\n(mergekit column skipped: no mergekit-yaml found; see this file's docstring to install it)")
    if worst is not None:
        print(f"\nlargest difference between expc's and mergekit's merged weights: {worst:.3g}")
    print("\nparts of a first run, measured in the same run (medians):\n")
    m = {k: statistics.median(v) for k, v in parts.items()}
    gb = 3 * nbytes / 1e9
    print("| part | s | note |")
    print("|---|---|---|")
    print(f"| hash the 3 inputs, blake2b (before) | {m['blake2b']:.2f} | {gb / m['blake2b']:.2f} GB/s, one thread |")
    print(f"| hash the 3 inputs, BLAKE3 (now; cached after the first run) | {m['blake3']:.2f} | "
          f"{gb / m['blake3']:.2f} GB/s, {m['blake2b'] / m['blake3']:.1f}x faster |")
    print(f"| python -c 'import torch, safetensors' | {m['torch']:.2f} | python -c pass: {m['pass']:.2f} s |")
    print(f"| --save by copying the merged directory (before) | {m['copy']:.2f} | shutil.copytree |")
    print(f"| --save by linking it (now) | {m['link']:.3f} | Store.export: hard links |")


if __name__ == "__main__":
    main()
