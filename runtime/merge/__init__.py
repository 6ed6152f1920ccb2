"""The merge algebra runtime: a model-typed expression compiled to one per-tensor function and
streamed over safetensors shards.

    expr.py            tree JSON -> normalized IR (constant folding of the linear parts); no torch
    safetensors_io.py  header parsing, chunked reads, a streaming shard writer; no torch at import
    modeldir.py        validating a Hugging Face directory (pretrained) and the pre-load checks
    kernels.py         the per-tensor kernels: TIES, DARE, SLERP (torch)
    compile.py         IR -> per-tensor function, specialised per tensor name (torch)
    engine.py          streaming execution: read, compute, write shards (torch)

FORMULAS.md states the semantics of every operator precisely.
"""
