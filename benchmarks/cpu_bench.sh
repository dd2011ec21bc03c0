#!/usr/bin/env bash
# Benches the CPU recipe's model into runs/bench-cpu (OUT=): the CPU recipe's model
# (the shipped `writing` model) unquantized and at 4 bits in every format, benched on 2 CPU threads
# against copy, the untuned base model and Harper (alone, and as a pre-pass before the GGUF model),
# then rendered into report.html / report.md with the verdict.
#   edgewrite run recipes/writing-smollm2-135m-cpu.yaml && LIMIT= bash benchmarks/cpu_bench.sh
# The report asks for what the product promises (--max-bits 4 --max-latency-ms 150): 4 bits, and a
# one-sentence edit in at most 150 ms on 2 threads.
# LIMIT: seeded rows per headline set (default 100; LIMIT= for every dev row, ~3x longer).
# Q40=0 leaves the plain Q4_0 GGUF out (4.5 bits for every tensor; llama.cpp repacks it for faster CPU
# kernels, while "Q4_K_M" falls back to Q5_0/Q8_0 on SmolLM2's 576-wide rows).
# IQ4=0 leaves the IQ4_NL GGUF out (4.5 bits for every tensor like Q4_0, with a non-linear 4-bit grid:
# llama.cpp's best 4-bit type for rows that are not a multiple of 256, no importance matrix needed).
# IMAT=0 leaves out the GGUFs rounded with an importance matrix (`quantize --rounding imatrix`: Q4_0, Q4_K_M and IQ4_NL
# again, weighted by the mean squared activations of 256 of the model's own training rows).
# QS=runs/quickstart adds the quickstart recipe's model (fp32 and Q4_K_M; `edgewrite run recipes/quickstart.yaml`
# first), labelled "(quickstart)"; QS= leaves it out.
# Q8=0 leaves the 8-bit GGUF (Q8_0, the quality reference for the 4-bit ones) out.
# GPTQ=0 leaves the GPTQ artifact out (on CPU it decodes through torch kernels: slow, and not what a
# laptop runs; it is the CUDA format).
# EXTRA: further artifacts benched after these (labels get their run folder's name). The run summarised in
# experiments/LOG.md (the 23-cell ledger, its raw rows retired)
# benched the previous CPU recipe's model (RUN, made by `git show ade5d06:recipes/writing-smollm2-135m-cpu.yaml`)
# and then the current recipe's, which ships:
#   N=runs/writing-cpu-next; RUN=runs/writing-smollm2-135m-cpu EXTRA="$N/merged $N/gguf-iq4_nl-imat $N/gguf-q4_1-lora \
#     $N/gguf-iq4_nl-imat-lora $N/gguf-q4_0 $N/gguf-q4_0-imat $N/gguf-q4_0-ar" LIMIT= bash benchmarks/cpu_bench.sh
# (`edgewrite run recipes/writing-smollm2-135m-cpu.yaml --set name=writing-cpu-next`,
# `edgewrite quantize runs/writing-cpu-next/merged -f gguf --type IQ4_NL --rounding imatrix`,
# `edgewrite quantize runs/writing-cpu-next/merged --runtime-lora`,
# `edgewrite quantize runs/writing-cpu-next/merged --runtime-lora --type IQ4_NL --rounding imatrix:edgewrite/shipped/writing/imatrix.npz` (the matrix shipped until ff19a90),
# `edgewrite quantize runs/writing-cpu-next/merged --type Q4_0` (also with `--rounding imatrix`) and
# `edgewrite quantize runs/writing-cpu-next/merged --type Q4_0 --rounding autoround:200` (13 min on 2 cores)
# make those; the two --runtime-lora ones (the embedded Q4_1 file as is, or the base re-rounded to IQ4_NL, plus
# the adapter applied at run time) took 7 and 4 min of cells, the three Q4_0 ones about 3.5 min each.)
# Measured on 2 cores (AMD EPYC): LIMIT=100 with GPTQ=0, ~22 min of bench; LIMIT= (every dev row, the
# committed run) with all ten systems, 65 min of cells (the untuned fp32 model alone 18, IQ4_NL 4) plus ~4 min of
# GPTQ quantization.
set -euo pipefail
cd "$(dirname "$0")/.."
EW=${EW:-.venv/bin/edgewrite}
R=${RUN:-runs/writing-smollm2-135m-cpu}
LIMIT=${LIMIT-100}
GPTQ=${GPTQ:-1}
Q8=${Q8:-1}
Q40=${Q40:-1}
IQ4=${IQ4:-1}
IMAT=${IMAT:-1}
QS=${QS-runs/quickstart}
OUT=${OUT:-runs/bench-cpu}
lim=()
[ -n "$LIMIT" ] && lim=(--limit "$LIMIT")
[ -d "$R/gguf-q4_k_m" ] || $EW quantize "$R/merged" -f gguf --bits 4
[ -d "$R/onnx-int4" ] || $EW quantize "$R/merged" -f onnx --bits 4
arts=("$R/merged" "$R/gguf-q4_k_m" "$R/onnx-int4")
if [ "$Q40" = 1 ]; then
  [ -d "$R/gguf-q4_0" ] || $EW quantize "$R/merged" -f gguf --type Q4_0
  arts+=("$R/gguf-q4_0")
fi
if [ "$IQ4" = 1 ]; then
  [ -d "$R/gguf-iq4_nl" ] || $EW quantize "$R/merged" -f gguf --type IQ4_NL
  arts+=("$R/gguf-iq4_nl")
fi
if [ "$Q8" = 1 ]; then
  [ -d "$R/gguf-q8_0" ] || $EW quantize "$R/merged" -f gguf --bits 8
  arts+=("$R/gguf-q8_0")
fi
if [ "$GPTQ" = 1 ]; then
  [ -d "$R/gptq-4bit-g64" ] || $EW quantize "$R/merged" -f gptq --bits 4
  arts+=("$R/gptq-4bit-g64")
fi
if [ "$IMAT" = 1 ]; then
  for t in Q4_0 Q4_K_M IQ4_NL; do
    d="$R/gguf-$(echo $t | tr 'A-Z' 'a-z')-imat"
    [ -d "$d" ] || $EW quantize "$R/merged" -f gguf --type $t --rounding imatrix
    arts+=("$d")
  done
fi
if [ -n "$QS" ]; then
  [ -d "$QS/merged" ] || { echo "QS=$QS has no merged model: run 'edgewrite run recipes/quickstart.yaml' or set QS=" >&2; exit 2; }
  [ -d "$QS/gguf-q4_k_m" ] || $EW quantize "$QS/merged" -f gguf --bits 4
  arts+=("$QS/merged" "$QS/gguf-q4_k_m")
fi
read -ra extra <<< "${EXTRA:-}"
arts+=("${extra[@]}")
$EW bench "${arts[@]}" \
  --pre harper --pre-on "$R/gguf-q4_k_m" --threads 2 --headline-only "${lim[@]}" --out "$OUT"
$EW report "$OUT" --max-bits 4 --max-latency-ms 150
.venv/bin/python benchmarks/variants.py "$OUT" --out "$OUT" > /dev/null
