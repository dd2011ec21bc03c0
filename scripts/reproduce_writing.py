"""Does the shipped `writing` model come out of its recipe again?

Re-runs the recipe named in edgewrite/shipped/writing/manifest.json under another name (data, tune,
merge: the whole CPU budget), then compares:
- the data fingerprint with the shipped one;
- the adapter weights with the shipped fp16 weights (max |difference|);
- the rebuilt merged model's dev outputs with the shipped merged model's outputs stored by the bench the
  manifest names, by paired bootstrap per task: reproduced = every interval of the difference contains 0.

    python scripts/reproduce_writing.py

Writes benchmarks/results/reproduce_writing.{json,md}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _outputs(rows_file: Path, sets: list) -> dict[str, list[str]]:
    from edgewrite.bench import read_rows

    stored = {(r["set"], r["id"]): r["output"] for r in read_rows(rows_file)}
    return {s.key: [stored[(s.key, row["id"])] for row in s.rows] for s in sets}


def main() -> None:
    import os

    from safetensors.torch import load_file

    from edgewrite.artifacts import git_commit, read_manifest, tool_versions, write_text_atomic
    from edgewrite.bench import cell_id, cpu_name, rows_path
    from edgewrite.bootstrap import paired
    from edgewrite.edit import load_editor
    from edgewrite.evaluate import gather, headline_scorers, run_eval, training_keys
    from edgewrite.models import SHIPPED_DIR, WRITING
    from edgewrite.pipeline import run_recipe
    from edgewrite.recipe import load_recipe

    os.chdir(ROOT)
    shipped = read_manifest(SHIPPED_DIR / WRITING)
    recipe = load_recipe(
        ROOT / shipped["recipe"]["path"], [f"name={load_recipe(ROOT / shipped['recipe']['path']).name}-rebuilt"]
    )
    t0 = time.perf_counter()
    dirs = run_recipe(recipe, log=print)
    build_s = time.perf_counter() - t0
    rebuilt = read_manifest(dirs["tune"])
    a = load_file(SHIPPED_DIR / WRITING / "adapter_model.safetensors")
    b = load_file(dirs["tune"] / "adapter_model.safetensors")
    max_diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    bench_dir = ROOT / shipped["bench"]["path"]
    bench = json.loads((bench_dir / "bench.json").read_text())
    merged_cell = next(c for c in bench["cells"] if c["label"] == shipped["dev"]["merged"]["label"])
    exclude, fraction = training_keys(read_manifest(dirs["merge"]))
    cond = bench["conditions"]
    sets = gather(
        ROOT / cond["data_dir"],
        None,
        cond["split"],
        cond["limit_per_set"],
        exclude,
        fraction,
        headline_only=cond.get("headline_only", False),
    )
    editor, _ = load_editor(dirs["merge"], batch_size=16)
    outputs, _, _ = run_eval(editor, sets, batch_size=16)
    ours = headline_scorers(sets, outputs)
    theirs = headline_scorers(sets, _outputs(rows_path(bench_dir, cell_id(merged_cell["label"], "cpu")), sets))
    diff = {k: v.as_dict() for k, v in paired(ours, theirs).items()}
    reproduced = all(d["lo"] <= 0 <= d["hi"] for d in diff.values())
    result = {
        "benchmark": "reproduce_writing",
        "command": "python scripts/reproduce_writing.py",
        "conditions": {"cpu": cpu_name(), "versions": tool_versions(), "commit": git_commit()},
        "recipe": shipped["recipe"],
        "build_seconds": round(build_s),
        "same_data": rebuilt["data"]["fingerprint"] == shipped["data"]["fingerprint"],
        "adapter_max_abs_diff": max_diff,
        "rebuilt_minus_shipped": diff,
        "reproduced": reproduced,
    }
    out = ROOT / "benchmarks" / "results"
    write_text_atomic(out / "reproduce_writing.json", json.dumps(result, indent=2) + "\n")
    md = [
        f"# Rebuilding the shipped model from {shipped['recipe']['path']} ({result['conditions']['cpu']})",
        "",
        f"Command: `{result['command']}`. Build (data, tune, merge): {build_s / 60:.0f} min. Same data: "
        f"{result['same_data']}. Adapter weights: max |rebuilt - shipped (fp16)| = {max_diff:.2e}.",
        "",
        "Rebuilt minus shipped, per task, on the bench's dev rows (paired bootstrap, 95 %):",
        "",
        "| task | difference [95% CI] |",
        "|---|---|",
        *(f"| {k} | {v['value']:+.2f} [{v['lo']:+.2f}, {v['hi']:+.2f}] |" for k, v in diff.items()),
        "",
        f"Reproduced within the intervals: **{'yes' if reproduced else 'no'}**.",
        "",
    ]
    write_text_atomic(out / "reproduce_writing.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
