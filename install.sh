#!/usr/bin/env bash
# Installs edgewrite into ./.venv on a fresh machine (Python 3.11, no GPU needed).
# llama-cpp-python is built from source, never with -march=native (pip caches the wheel under a key that
# ignores CMAKE_ARGS, see ../shared/STACK.md): AVX2 always, plus each AVX-512 extension this CPU has
# (F/BW/VL/DQ/CD, VNNI, VBMI, BF16): 1.2-1.3x faster edits than AVX2 alone on these machines
# (benchmarks/results/llama_build.md). CMAKE_ARGS set by the caller wins.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
AVX512=0
if has avx512f avx512bw avx512vl avx512dq avx512cd; then
  AVX512=1
  ARGS="$ARGS -DGGML_AVX512=ON"
  has avx512_vnni && ARGS="$ARGS -DGGML_AVX512_VNNI=ON"
  has avx512vbmi && ARGS="$ARGS -DGGML_AVX512_VBMI=ON"
  has avx512_bf16 && ARGS="$ARGS -DGGML_AVX512_BF16=ON"
fi
[ -n "${CMAKE_ARGS:-}" ] && AVX512=0  # the caller chose the flags
export CMAKE_ARGS="${CMAKE_ARGS:-$ARGS}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
.venv/bin/python -m pip install -q --upgrade pip
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e ".[dev]"  # no setuptools banners for the editable build
# A wheel pip cached from an earlier (AVX2) build would be reused silently: rebuild it once if so.
if [ "$AVX512" = 1 ] && ! .venv/bin/python -c 'import llama_cpp, sys; sys.exit("AVX512 = 1" not in llama_cpp.llama_print_system_info().decode())'; then
  echo "llama-cpp-python: rebuilding with AVX-512 (pip had a cached build without it)"
  .venv/bin/python -m pip install -q --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==0.3.36"
fi
.venv/bin/edgewrite --version
