#!/usr/bin/env bash
# Reproduces benchmarks/results/bench/: the quickstart model in every format, benched on 2 CPU threads
# against copy and the untuned base model, then rendered into report.html / report.md.
#   bash benchmarks/cpu_bench.sh            (after `edgewrite run recipes/quickstart.yaml`)
# Expected: ~5 min of quantization (GPTQ is most of it), ~25 min of bench on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
EW=${EW:-.venv/bin/edgewrite}
M=runs/quickstart/merged
LIMIT=${LIMIT:-20}
$EW quantize $M -f gguf --bits 8
$EW quantize $M -f gguf --bits 4
$EW quantize $M -f onnx --bits 4
$EW quantize $M -f gptq --bits 4
$EW bench $M runs/quickstart/gguf-q8_0 runs/quickstart/gguf-q4_k_m runs/quickstart/gptq-4bit-g64 \
  runs/quickstart/onnx-int4 --threads 2 --limit "$LIMIT" --out benchmarks/results/bench
$EW report benchmarks/results/bench
cp benchmarks/results/bench/report.md benchmarks/results/report.md
