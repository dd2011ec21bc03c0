"""Recipe search at an equal budget: which training choices make the tuned model beat copy and the
untuned base model?

Each candidate changes one or two keys of experiments/recipe_search_base.yaml (same number of steps and
rows per step, so the same CPU budget up to each choice's own speed, which is recorded), is trained
with `edgewrite run` (data, tune, merge), and is scored by the eval code on a fixed seeded sample of
every task's headline dev set (`edgewrite eval --limit N --headline-only`). Each candidate is compared
with the base candidate by paired bootstrap on the same rows.

    python experiments/recipe_search.py                 # all candidates (resumes: finished ones are kept)
    python experiments/recipe_search.py --only lr-1e-3  # one of them

Writes benchmarks/results/recipe_search/{recipe_search.json,recipe_search.md,recipe_search.svg}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


BASE = "experiments/recipe_search_base.yaml"


def _sources_without(path: str) -> str:
    """The default data sources minus one file, as a YAML flow list for --set."""
    from edgewrite.recipe import default_sources

    kept = [s for s in default_sources() if s.path != path]
    return "[" + ", ".join(f"{{path: {s.path}, role: {s.role}}}" for s in kept) + "]"


# name -> (what it tests, --set overrides)
EW = ["train.edit_weight=3"]
EW6 = ["train.edit_weight=6"]
SEED_RUN = "edit-weight-6-seed-7"  # the reference recipe again with another seed: the training noise
# name -> (what it tests, --set overrides, the candidate it is compared with). Stage 1 varies the base
# recipe; stage 2 varies the winner of stage 1 (edit weighting) one choice at a time.
CANDIDATES: dict[str, tuple[str, list[str], str]] = {
    "untuned": ("the embedded model without tuning (the bar to clear)", [], ""),
    "base": ("LoRA r16 on all linear layers, lr 5e-4, no default system prompt", [], "untuned"),
    "lr-1e-3": ("learning rate 1e-3", ["train.lr=1e-3"], "base"),
    "edit-weight-3": ("edit-weighted loss: answer tokens that change the input weigh 3", EW, "base"),
    "edit-weight-6": ("edit weight 6", EW6, "edit-weight-3"),
    "edit-weight-10": ("edit weight 10", ["train.edit_weight=10"], "edit-weight-6"),
    "full-ft": (
        "full fine-tuning, lr 1e-4, edit weight 3",
        [*EW, "train.method=full", "train.lr=1e-4"],
        "edit-weight-3",
    ),
    "lora-r64": (
        "LoRA r64 (alpha 128), edit weight 3",
        [*EW, "train.lora_r=64", "train.lora_alpha=128"],
        "edit-weight-3",
    ),
    "no-unchanged": (
        "no row whose answer is its input (cap 0 instead of 10%), edit weight 3",
        [*EW, "data.max_unchanged_fraction=0"],
        "edit-weight-3",
    ),
    # Stage 3 varies the recipe that made the shipped model (edit weight 6) one choice at a time.
    "weak-tasks-2x": (
        "coherence, neutralization, paraphrase (not yet significantly above untuned) weighted 2x, edit weight 6",
        [*EW6, "data.task_weights={coherence: 2, neutralization: 2, paraphrase: 2}"],
        "edit-weight-6",
    ),
    "synthetic-200": (
        "200 synthetic learner-error rows each for grammar and fluency, edit weight 6",
        [*EW6, "data.synthetic_errors=200"],
        "edit-weight-6",
    ),
    "general-200": (
        "200 general (Alpaca) rows instead of 40, edit weight 6",
        [*EW6, "data.general=200"],
        "edit-weight-6",
    ),
    "system-prompt": (
        "with the template's default system prompt, edit weight 6",
        [*EW6, "data.prompt_style=chat"],
        "edit-weight-6",
    ),
    "paraphrase-stsb": (
        "paraphrase trained on STS-B pairs only (the headline set's style), not MRPC's news rewrites, edit weight 6",
        [*EW6, "data.sources=" + _sources_without("mrpc/train.jsonl")],
        "edit-weight-6",
    ),
    "edit-weight-6-seed-7": (
        "edit weight 6 again with another seed (data order, sampling, LoRA init): the training noise",
        [*EW6, "train.seed=7"],
        "edit-weight-6",
    ),
    "alpaca-prompt": ("the paper's Alpaca prompt, edit weight 6", [*EW6, "data.prompt_style=alpaca"], "edit-weight-6"),
    # Stage 4: LoRA dropout, the second op of the training profile on CPU (benchmarks/tune_throughput.py).
    # Both in fp32, so that a machine without bf16 compares like with like; fp32 against edit-weight-6
    # (bf16 where the CPU has it) is itself the effect of bf16 autocast on quality.
    "fp32": ("edit weight 6, fp32 training (no bf16 autocast)", [*EW6, "train.bf16=false"], "edit-weight-6"),
    "no-lora-dropout": (
        "LoRA dropout 0 instead of 0.05 (Unsloth's and LLaMA-Factory's default), edit weight 6, fp32",
        [*EW6, "train.bf16=false", "train.lora_dropout=0"],
        "fp32",
    ),
}


def _run_candidate(name: str, overrides: list[str], eval_rows: int, out: Path) -> dict:
    from edgewrite.bench import cpu_name, rows_path, write_rows
    from edgewrite.edit import load_editor
    from edgewrite.evaluate import gather, run_eval, score_outputs, training_keys
    from edgewrite.pipeline import run_recipe
    from edgewrite.recipe import load_recipe

    sets_ = [f"name=search-{name}", *overrides]
    recipe = load_recipe(ROOT / BASE, sets_)
    t0 = time.perf_counter()
    if name == "untuned":
        from edgewrite.models import resolve_model

        merged = resolve_model(recipe.model).path
        stats = {"seconds": 0.0, "tokens_per_second": 0.0}
    else:
        dirs = run_recipe(recipe, log=print)
        stats = json.loads((dirs["tune"] / "manifest.json").read_text())["stats"]
        merged = dirs["merge"]
    train_s = time.perf_counter() - t0
    manifest = json.loads((merged / "manifest.json").read_text())
    exclude, fraction = training_keys(manifest)
    sets = gather(Path(recipe.data.data_dir), None, "dev", eval_rows, exclude, fraction, headline_only=True)
    editor, _ = load_editor(merged, batch_size=16)
    t1 = time.perf_counter()
    outputs, records, _ = run_eval(editor, sets, batch_size=16)
    eval_s = time.perf_counter() - t1
    quality = score_outputs(sets, outputs)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    write_rows(rows_path(out, name), records)
    unchanged = sum(" ".join(r["output"].split()) == " ".join(r["source"].split()) for r in records) / len(records)
    override_flags = " ".join(f"--set '{o}'" for o in sets_)
    return {
        "name": name,
        "what": CANDIDATES[name][0],
        "overrides": overrides,
        "compared_with": CANDIDATES[name][2],
        "command": (
            f"edgewrite eval default --limit {eval_rows} --headline-only"
            if name == "untuned"
            else f"edgewrite run {BASE} {override_flags} && edgewrite eval {merged} --limit {eval_rows} --headline-only"
        ),
        "stats": stats,
        "cpu": cpu_name(),
        "wall_s": {"data_tune_merge": round(train_s, 1), "eval": round(eval_s, 1)},
        "unchanged_output_fraction": round(unchanged, 4),
        "quality": quality,
    }


def _compare(results: dict, eval_rows: int) -> None:
    """Paired differences of every candidate against the one it varies and against the untuned model
    (same rows, same resamples)."""
    from edgewrite.bench import read_rows, rows_path
    from edgewrite.bootstrap import paired
    from edgewrite.evaluate import gather, headline_scorers

    sets = gather(ROOT.parent / "shared" / "data", None, "dev", eval_rows, set(), 0.1, headline_only=True)
    keys = {s.key: [r["id"] for r in s.rows] for s in sets}
    scorers = {}
    for name in results:
        rows = read_rows(rows_path(OUT, name))
        by_set: dict[str, dict[str, str]] = {}
        for r in rows:
            by_set.setdefault(r["set"], {})[r["id"]] = r["output"]
        if all(set(by_set.get(k, {})) == set(ids) for k, ids in keys.items()):
            scorers[name] = headline_scorers(sets, {k: [by_set[k][i] for i in ids] for k, ids in keys.items()})
    for name, r in results.items():
        ref = r.get("compared_with")
        r["vs_reference"] = (
            {k: v.as_dict() for k, v in paired(scorers[name], scorers[ref]).items()}
            if ref in scorers and name in scorers
            else None
        )
        r["vs_untuned"] = (
            {k: v.as_dict() for k, v in paired(scorers[name], scorers["untuned"]).items()}
            if "untuned" in scorers and name in scorers and name != "untuned"
            else None
        )
        r.pop("vs_base", None)


def _render(doc: dict) -> None:
    from edgewrite.tasks import TASK_NAMES

    results = doc["results"]
    lines = [
        "# Recipe search (equal budget: "
        f"{doc['steps']} steps x {doc['batch_size']} rows; dev: {doc['eval_rows']} seeded rows per headline set)",
        "",
        f"Command: `{doc['command']}`",
        "",
        "Mean of the seven headline scores (0-100) with its 95 % bootstrap interval; per task the headline; "
        "'vs its reference' / 'vs untuned': paired difference of the mean with its interval (* = interval excludes "
        "0). 'same' = share of dev outputs identical to their input.",
        "",
        "| candidate | what | mean [95% CI] | vs its reference | vs untuned | "
        + " | ".join(TASK_NAMES)
        + " | same | train s | tok/s |",
        "|" + "---|" * (5 + len(TASK_NAMES) + 3),
    ]

    def delta(d: dict | None) -> str:
        m = (d or {}).get("mean")
        if not m:
            return "–"
        star = "*" if m["lo"] > 0 or m["hi"] < 0 else ""
        return f"{m['value']:+.2f} [{m['lo']:+.2f}, {m['hi']:+.2f}]{star}"

    for name, r in results.items():
        q = r["quality"]
        ci = q["mean_ci"]
        ref = f" (vs {r['compared_with']})" if r.get("compared_with") else ""
        cells = [f"{q['headline'].get(t, float('nan')):.1f}" for t in TASK_NAMES]
        lines.append(
            f"| {name} | {r['what']} | {ci['value']:.2f} [{ci['lo']:.2f}, {ci['hi']:.2f}] | "
            f"{delta(r.get('vs_reference'))}{ref if r.get('vs_reference') else ''} | {delta(r.get('vs_untuned'))} | "
            + " | ".join(cells)
            + f" | {r['unchanged_output_fraction']:.0%} | {r['stats']['seconds']:.0f}"
            + f" | {r['stats']['tokens_per_second']:.0f}{'' if r['stats'].get('bf16', True) else ' fp32'} |"
        )
    lines += [
        "",
        "Reproduce a row: the `command` field of its entry in recipe_search.json. *train s*, *tok/s*: "
        "bf16 autocast unless marked fp32, on the CPU named in the entry (`cpu`, `stats`); compare speeds "
        "only between rows made on one machine.",
    ]
    if (seed := results.get(SEED_RUN)) and seed.get("vs_reference"):
        v = seed["vs_reference"]
        moved = [f"{t} {d['value']:+.1f}" for t, d in v.items() if t != "mean" and (d["lo"] > 0 or d["hi"] < 0)]
        lines += [
            "",
            f"Training noise: the same recipe with another seed ({SEED_RUN}) differs from "
            f"{CANDIDATES[SEED_RUN][2]} by {v['mean']['value']:+.2f} [{v['mean']['lo']:+.2f}, "
            f"{v['mean']['hi']:+.2f}] on the mean"
            + (", and 'significantly' on " + ", ".join(moved) if moved else "")
            + ". The intervals above resample dev rows only, not training runs: a difference of that size"
            " between two candidates can come from the seed alone.",
        ]
    missing = [n for n in CANDIDATES if n not in results]
    if missing:
        lines += [
            "",
            "Not run yet (each ~13 min on 2 cores; `python experiments/recipe_search.py --only NAME`): "
            + ", ".join(f"{n} ({CANDIDATES[n][0]})" for n in missing)
            + ".",
        ]
    lines.append("")
    (OUT / "recipe_search.md").write_text("\n".join(lines))
    _plot(results)


def _plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    vals = [results[n]["quality"]["mean_ci"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.2), dpi=100)
    y = range(len(names))
    ax.barh(list(y), [v["value"] for v in vals], color="#4c72b0")
    ax.errorbar(
        [v["value"] for v in vals],
        list(y),
        xerr=[[v["value"] - v["lo"] for v in vals], [v["hi"] - v["value"] for v in vals]],
        fmt="none",
        ecolor="black",
        capsize=3,
    )
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("mean headline dev score (0-100), 95% bootstrap interval")
    lo = min(v["lo"] for v in vals)
    ax.set_xlim(left=max(0, lo - 3))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT / "recipe_search.svg")
    plt.close(fig)


OUT = ROOT / "benchmarks" / "results" / "recipe_search"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", help="candidates to (re-)run; default: all not yet done")
    ap.add_argument("--eval-rows", type=int, default=80)
    ap.add_argument("--render", action="store_true", help="only re-render the table and plot")
    a = ap.parse_args()
    os.chdir(ROOT)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "recipe_search.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"results": {}}
    for r in doc["results"].values():  # results from before the comparisons were named
        r.setdefault("compared_with", CANDIDATES.get(r["name"], ("", [], ""))[2])
    from edgewrite.artifacts import git_commit, tool_versions
    from edgewrite.bench import cpu_name
    from edgewrite.recipe import load_recipe

    base = load_recipe(ROOT / BASE)
    doc.update(
        {
            "benchmark": "recipe_search",
            "command": "python experiments/recipe_search.py",
            "base_recipe": BASE,
            "steps": base.train.max_steps,
            "batch_size": base.train.batch_size,
            "eval_rows": a.eval_rows,
            "conditions": {
                "cpu": cpu_name(),
                "cores": os.cpu_count(),
                "versions": tool_versions(),
                "commit": git_commit(),
            },
        }
    )
    todo = a.only if a.only else [n for n in CANDIDATES if n not in doc["results"]]
    for name in [] if a.render else todo:
        if name not in CANDIDATES:
            _fail(f"unknown candidate '{name}'; candidates: {', '.join(CANDIDATES)}")
        print(f"== candidate {name}: {CANDIDATES[name][0]}", flush=True)
        doc["results"][name] = _run_candidate(name, CANDIDATES[name][1], a.eval_rows, OUT)
        doc["results"] = {n: doc["results"][n] for n in CANDIDATES if n in doc["results"]}
        _compare(doc["results"], a.eval_rows)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
        _render(doc)
        r = doc["results"][name]
        print(f"== {name}: mean {r['quality']['mean']:.2f} {r['quality']['headline']}", flush=True)
    if a.render and doc["results"]:
        _compare(doc["results"], a.eval_rows)
        _render(doc)


if __name__ == "__main__":
    main()
