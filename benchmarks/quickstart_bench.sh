#!/usr/bin/env bash
# Reproduces benchmarks/results/bench-quickstart/: the quickstart recipe's model as it is now (LoRA dropout 0),
# fp32 and its Q4_K_M export (what `edgewrite run recipes/quickstart.yaml` leaves in runs/quickstart), on every
# dev row of each task's headline set, 2 CPU threads, against copy, the untuned model, Harper and the shipped
# `writing` model (fp32).
#   edgewrite run recipes/quickstart.yaml && bash benchmarks/quickstart_bench.sh
# The rows are those of benchmarks/results/bench and bench-shipped (the same --train-data), so the figures line
# up with theirs; the main bench's "(quickstart)" rows are the quickstart recipe before it dropped LoRA dropout.
# The systems this bench shares with bench-shipped (the untuned model, Harper, the writing merge) start from
# its finished cells: `edgewrite bench` keeps a cell only when its rows, settings and artifact are the same,
# and runs it again otherwise. Measured on 2 cores (AMD EPYC, no AVX-512): 18 min in all (the quickstart fp32 model 11,
# its Q4_K_M export 6 min of cells).
set -euo pipefail
cd "$(dirname "$0")/.."
EW=${EW:-.venv/bin/edgewrite}
PY=${PY:-.venv/bin/python}
QS=${QS:-runs/quickstart}
OUT=${OUT:-benchmarks/results/bench-quickstart}
FROM=benchmarks/results/bench-shipped
[ -d "$QS/merged" ] || { echo "error: $QS has no merged model: run 'edgewrite run recipes/quickstart.yaml' first" >&2; exit 2; }
[ -d "$QS/gguf-q4_k_m" ] || $EW quantize "$QS/merged" -f gguf --bits 4
mkdir -p runs "$OUT/cells" "$OUT/rows"
[ -d runs/qsdata ] || $EW data --recipe recipes/quickstart.yaml --out runs/qsdata
[ -d runs/olddata ] || { git show ade5d06:recipes/writing-smollm2-135m-cpu.yaml > runs/old-recipe.yaml; $EW data --recipe runs/old-recipe.yaml --out runs/olddata; }
[ -d runs/wdata ] || $EW data --recipe recipes/writing-smollm2-135m-cpu.yaml --out runs/wdata
for c in base_fp32__untuned__cpu harper__rule-based__cpu tuned_fp32__cpu; do
  if [ ! -f "$OUT/cells/$c.json" ]; then
    cp "$FROM/rows/$c.jsonl.gz" "$OUT/rows/$c.jsonl.gz"
    cp "$FROM/cells/$c.json" "$OUT/cells/$c.json"
  fi
done
merged=$($PY -c "from edgewrite.shipped import merged_writing; print(merged_writing())")
$EW bench "$merged" "$QS/merged" "$QS/gguf-q4_k_m" --train-data runs/qsdata --train-data runs/olddata \
  --train-data runs/wdata --threads 2 --headline-only --out "$OUT"
$EW report "$OUT" --max-bits 4
rm -f "${EDGEWRITE_HOME:-$HOME/.cache/edgewrite}/recommended.json"  # assist keeps following the shipped manifest
