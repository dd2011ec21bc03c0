#!/usr/bin/env bash
# Installs edgewrite into ./.venv on a fresh machine (Python 3.11, no GPU needed).
# llama-cpp-python is built from source: the flags give a portable AVX2 build (not -march=native),
# because pip caches the wheel under a key that ignores CMAKE_ARGS (see ../shared/STACK.md).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/edgewrite --version
