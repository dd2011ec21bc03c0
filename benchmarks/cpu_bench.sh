#!/usr/bin/env bash
# Reproduces benchmarks/results/bench/ and benchmarks/results/report.md: the CPU recipe's model
# (the shipped `writing` model) unquantized and at 4 bits in every format, benched on 2 CPU threads
# against copy, the untuned base model and Harper (alone, and as a pre-pass before the GGUF model),
# then rendered into report.html / report.md with the verdict.
#   edgewrite run recipes/writing-smollm2-135m-cpu.yaml && bash benchmarks/cpu_bench.sh
# LIMIT: seeded rows per headline set (default 100; LIMIT= for every dev row, ~3x longer).
# GPTQ=0 leaves the GPTQ artifact out (on CPU it decodes through torch kernels: slow, and not what a
# laptop runs; it is the CUDA format).
# Measured on 2 cores (AMD EPYC) with GPTQ=0: ~22 min of bench; GPTQ adds ~3 min of quantization and its
# cell (torch kernels on CPU: several times slower than the GGUF cell).
set -euo pipefail
cd "$(dirname "$0")/.."
EW=${EW:-.venv/bin/edgewrite}
R=${RUN:-runs/writing-smollm2-135m-cpu}
LIMIT=${LIMIT-100}
GPTQ=${GPTQ:-1}
OUT=${OUT:-benchmarks/results/bench}
lim=()
[ -n "$LIMIT" ] && lim=(--limit "$LIMIT")
[ -d "$R/gguf-q4_k_m" ] || $EW quantize "$R/merged" -f gguf --bits 4
[ -d "$R/onnx-int4" ] || $EW quantize "$R/merged" -f onnx --bits 4
arts=("$R/merged" "$R/gguf-q4_k_m" "$R/onnx-int4")
if [ "$GPTQ" = 1 ]; then
  [ -d "$R/gptq-4bit-g64" ] || $EW quantize "$R/merged" -f gptq --bits 4
  arts+=("$R/gptq-4bit-g64")
fi
$EW bench "${arts[@]}" \
  --pre harper --pre-on "$R/gguf-q4_k_m" --threads 2 --headline-only "${lim[@]}" --out "$OUT"
$EW report "$OUT"
cp "$OUT/report.md" benchmarks/results/report.md
