"""The merge algebra runtime: a model-typed expression compiled to one per-tensor function and
streamed over safetensors shards.

    expr.py            tree JSON -> normalized IR (constant folding of the linear parts); no torch
    safetensors_io.py  header parsing, chunked reads, a streaming shard writer; no torch at import
    modeldir.py        validating a Hugging Face directory (pretrained) and the pre-load checks,
                       also made by `expc check` on the pretrained() operands (check_known)
    kernels.py         the per-tensor kernels: TIES, DARE, SLERP, and those the merge operators declare (torch)
    compile.py         IR -> per-tensor function, specialised per tensor name; a call runs the kernel
                       its operator declares (@op(..., kernel=...)), found through the program's registry (torch)
    streaming.py       the reader and writer threads and the loop between them (no torch)
    engine.py          planning the per-tensor tasks and computing them: a linear combination of
                       float32/float16 operands is computed with numpy (no torch import), the rest with torch

FORMULAS.md states the semantics of every operator precisely.
"""
