"""``llama_model_quantize`` through llama-cpp-python's C bindings, run as a child process so that
llama.cpp's own log (which tensors fell back to which type) can be read from its stderr.

    python -m edgewrite.quantize.llama_quantize IN.gguf OUT.gguf FTYPE NTHREAD [IMATRIX.npz] [PATTERN=TYPE ...]

The importance matrix and the per-tensor type overrides are passed as llama.h's
``llama_model_imatrix_data`` / ``llama_model_tensor_override`` arrays, each ended by a NULL name, the
way llama-quantize builds them.
"""

from __future__ import annotations

import ctypes
import sys


def main(argv: list[str]) -> int:
    import llama_cpp

    src, dst, ftype, nthread, *rest = argv
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = int(nthread)
    params.ftype = int(ftype)
    keep = []  # the arrays and buffers must outlive the call
    if rest and rest[0].endswith(".npz"):
        import numpy as np

        values = dict(np.load(rest.pop(0), allow_pickle=False))
        entries = (llama_cpp.llama_model_imatrix_data * (len(values) + 1))()
        for i, (name, v) in enumerate(sorted(values.items())):
            buf = np.ascontiguousarray(v, dtype=np.float32)
            keep.append(buf)
            entries[i].name = name.encode()
            entries[i].data = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            entries[i].size = buf.size
        entries[len(values)].name = None
        keep.append(entries)
        params.imatrix = ctypes.cast(entries, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    if rest:
        overrides = (llama_cpp.llama_model_tensor_override * (len(rest) + 1))()
        for i, spec in enumerate(rest):
            pattern, _, type_name = spec.rpartition("=")
            overrides[i].pattern = pattern.encode()
            overrides[i].type = getattr(llama_cpp, f"GGML_TYPE_{type_name}")
        overrides[len(rest)].pattern = None
        overrides[len(rest)].type = llama_cpp.GGML_TYPE_COUNT
        keep.append(overrides)
        params.tt_overrides = ctypes.cast(overrides, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    return llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
