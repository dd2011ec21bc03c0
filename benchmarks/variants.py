"""Paired differences between chosen pairs of benched systems, from the bench's own bootstrap
comparisons: what an importance matrix does to each 4-bit GGUF type, what the quickstart recipe
buys against the untuned model and against the CPU recipe, what the current CPU recipe changed, and what
keeping its adapter apart (the embedded Q4_1 file as is, the LoRA applied at run time) keeps, and what
AutoRound's tuned rounding keeps against llama.cpp's nearest rounding.

    python benchmarks/variants.py BENCH_DIR

Writes OUT/variants.{json,md} (--out, default benchmarks/results).

    python benchmarks/variants.py benchmarks/results/bench-shipped --shipped

The same for what a user of the shipped `writing` model gets (its fp32 merge, its served 4-bit export now
and before, against copy, the untuned model and Harper), with each export's score as a share of the fp32
merge's per task: benchmarks/results/shipped.{json,md} (README: <!-- results:shipped -->).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = " (writing-cpu-next)"  # the current CPU recipe's run (the shipped model), benched after the previous one
PAIRS = [
    ("tuned gguf Q4_0 imatrix", "tuned gguf Q4_0", "importance matrix, Q4_0"),
    ("tuned gguf Q4_K_M imatrix", "tuned gguf Q4_K_M", "importance matrix, Q4_K_M"),
    ("tuned gguf IQ4_NL imatrix", "tuned gguf IQ4_NL", "importance matrix, IQ4_NL"),
    ("tuned gguf IQ4_NL imatrix", "tuned gguf Q4_K_M", "IQ4_NL with it vs Q4_K_M (previous CPU recipe)"),
    ("tuned fp32 (quickstart)", "base fp32 (untuned)", "quickstart recipe (fp32) vs untuned"),
    ("tuned gguf Q4_K_M (quickstart)", "tuned fp32 (quickstart)", "quickstart: Q4_K_M vs its fp32"),
    ("tuned fp32", "tuned fp32 (quickstart)", "previous CPU recipe vs quickstart recipe (fp32)"),
    ("tuned gguf IQ4_NL imatrix", "tuned fp32", "previous CPU recipe: IQ4_NL imatrix vs its fp32"),
    ("tuned gguf Q4_K_M", "tuned fp32", "previous CPU recipe: Q4_K_M vs its fp32"),
    ("tuned gguf Q8_0", "tuned fp32", "previous CPU recipe: Q8_0 vs its fp32"),
    ("tuned fp32" + NOW, "tuned fp32", "CPU recipe now vs before: STS-B-only paraphrase + synthetic errors (fp32)"),
    ("tuned gguf IQ4_NL imatrix" + NOW, "tuned gguf IQ4_NL imatrix", "CPU recipe now vs before: IQ4_NL imatrix"),
    (
        "tuned gguf IQ4_NL imatrix" + NOW,
        "tuned fp32" + NOW,
        "CPU recipe now: IQ4_NL imatrix (served before) vs its fp32",
    ),
    ("tuned gguf Q4_1 + LoRA", "tuned fp32" + NOW, "CPU recipe now: embedded Q4_1 file + LoRA at run time vs fp32"),
    ("tuned gguf Q4_1 + LoRA", "tuned gguf IQ4_NL imatrix" + NOW, "CPU recipe now: Q4_1 + LoRA vs IQ4_NL imatrix"),
    ("tuned gguf IQ4_NL imatrix + LoRA", "tuned fp32" + NOW, "CPU recipe now: base as IQ4_NL + LoRA vs fp32"),
    ("tuned gguf IQ4_NL imatrix + LoRA", "tuned gguf IQ4_NL imatrix" + NOW, "IQ4_NL imatrix: LoRA apart vs merged in"),
    ("tuned gguf Q4_0 AutoRound", "tuned fp32" + NOW, "CPU recipe now: Q4_0, rounding tuned by AutoRound, vs fp32"),
    ("tuned gguf Q4_0" + NOW, "tuned fp32" + NOW, "CPU recipe now: Q4_0, nearest rounding, vs fp32"),
    ("tuned gguf Q4_0 AutoRound", "tuned gguf Q4_0" + NOW, "Q4_0: AutoRound vs nearest rounding"),
    ("tuned gguf Q4_0 AutoRound", "tuned gguf Q4_0 imatrix" + NOW, "Q4_0: AutoRound vs importance matrix"),
    (
        "tuned gguf Q4_0 AutoRound",
        "tuned gguf IQ4_NL imatrix" + NOW,
        "AutoRound Q4_0 vs IQ4_NL imatrix (served before)",
    ),
    ("tuned gguf Q4_0 AutoRound", "tuned gguf Q4_1 + LoRA", "AutoRound Q4_0 vs Q4_1 + LoRA at run time"),
]


SERVED = "tuned gguf Q4_0 AutoRound + 28 Q8_0"  # what the shipped adapter serves now (its manifest's `serve`)
BEFORE = "tuned gguf Q4_0 AutoRound"  # what it served before
PAIRS_SHIPPED = [
    (SERVED, "tuned fp32", "served now: Q4_0, 28 layers in Q8_0, with the shipped AutoRound rounding, vs fp32"),
    (BEFORE, "tuned fp32", "served before: plain Q4_0 with the AutoRound rounding shipped then, vs fp32"),
    (SERVED, BEFORE, "served now vs served before"),
    (SERVED, "copy (input unchanged)", "served now vs copy"),
    (SERVED, "base fp32 (untuned)", "served now vs the untuned model"),
    (SERVED, "harper (rule-based)", "served now vs Harper"),
]


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    from edgewrite.report import comparison
    from edgewrite.tasks import TASK_NAMES

    argv = sys.argv[1:]
    out = ROOT / "benchmarks" / "results"
    if "--out" in argv:
        k = argv.index("--out")
        if k + 1 >= len(argv):
            _fail("--out needs a folder")
        out = Path(argv[k + 1])
        argv = argv[:k] + argv[k + 2 :]
    args = [a for a in argv if a != "--shipped"]
    shipped = "--shipped" in argv
    pairs, name = (PAIRS_SHIPPED, "shipped") if shipped else (PAIRS, "variants")
    if not args:
        _fail("give a bench folder: python benchmarks/variants.py BENCH_DIR [--shipped] [--out DIR]")
    bench_dir = Path(args[0])
    if not (bench_dir / "bench.json").is_file():
        _fail(f"{bench_dir} has no bench.json; run `edgewrite bench` (benchmarks/cpu_bench.sh) first")
    doc = json.loads((bench_dir / "bench.json").read_text())
    ids = {c["label"]: c for c in doc["cells"] if c.get("device") in ("cpu", "-")}
    rows = []
    for a, b, what in pairs:
        if a not in ids or b not in ids:
            continue
        cmp = comparison(doc, ids[a]["id"], ids[b]["id"])
        if cmp:
            p50 = [(ids[x].get("edit_latency_ms") or {}).get("p50") for x in (a, b)]
            rows.append(
                {
                    "what": what,
                    "a": a,
                    "b": b,
                    "mean": cmp["mean"],
                    "tasks": cmp["tasks"],
                    "p50_ms": p50,
                    "differ": cmp.get("differ"),
                }
            )
    if not rows:
        _fail(f"{bench_dir} holds none of the pairs this script compares")

    def d(v: dict) -> str:
        star = "*" if v["lo"] > 0 or v["hi"] < 0 else ""
        return f"{v['value']:+.1f} [{v['lo']:+.1f}, {v['hi']:+.1f}]{star}"

    lines = [
        "# Paired differences (a - b) on every dev row, from the bench's bootstrap",
        "",
        f"From `{bench_dir.relative_to(ROOT) if bench_dir.is_relative_to(ROOT) else bench_dir}/bench.json` "
        f"({doc['conditions'].get('cpu')}, {doc['conditions'].get('threads')} threads); "
        f"`python benchmarks/variants.py {' '.join(sys.argv[1:])}`. "
        "* = the 95 % interval excludes 0. *differ*: the share of dev rows "
        "whose outputs a and b are not the same text.",
        "",
        "| comparison | a | b | edit p50 ms a / b | differ | mean | " + " | ".join(TASK_NAMES) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(TASK_NAMES),
    ]
    for r in rows:
        lat = " / ".join("–" if v is None else f"{v:.0f}" for v in r["p50_ms"])
        lines.append(
            f"| {r['what']} | {r['a']} | {r['b']} | {lat} | "
            + ("–" if r["differ"] is None else f"{r['differ'] * 100:.0f}%")
            + f" | {d(r['mean'])} | "
            + " | ".join(d(r["tasks"][t]) if t in r["tasks"] else "–" for t in TASK_NAMES)
            + " |"
        )
    shares = []
    if shipped and "tuned fp32" in ids:
        fp32 = ids["tuned fp32"]["quality"]["headline_ci"]
        lines += [
            "",
            "Each system's score as a share of the fp32 merge's, per task (the issue's bar for a 4-bit export: 98 %):",
            "",
            "| system | mean | " + " | ".join(TASK_NAMES) + " | lowest |",
            "|---|---|" + "---|" * len(TASK_NAMES) + "---|",
        ]
        for label in (SERVED, BEFORE):
            if label not in ids:
                continue
            q = ids[label]["quality"]
            share = {t: q["headline_ci"][t]["value"] / fp32[t]["value"] for t in TASK_NAMES if t in fp32}
            mean = q["mean_ci"]["value"] / ids["tuned fp32"]["quality"]["mean_ci"]["value"]
            low = min(share, key=share.get)
            shares.append({"system": label, "mean": mean, "tasks": share, "lowest": low})
            lines.append(
                f"| {label} | {mean:.1%} | "
                + " | ".join(f"{share[t]:.1%}" for t in TASK_NAMES)
                + f" | {low} {share[low]:.1%} |"
            )
    if shipped and SERVED in ids:
        served = json.loads((Path(ids[SERVED]["artifact"]) / "manifest.json").read_text())
        kept = served["details"]["rounding_file"]
        size = (ROOT / "edgewrite" / "shipped" / "writing" / kept["file"]).stat().st_size
        lines += [
            "",
            f"The served export, as a user's first call makes it: {served['details']['gguf_file']} "
            f"({ids[SERVED]['size_mb']:.0f} MB; the {size / 1e6:.1f} MB {kept['file']} that rounds it ships with "
            "the adapter); "
            f"{kept['tensors_matching']} of {kept['tensors_matching'] + len(kept['tensors_differing'])} tensors "
            "are byte for byte those of the file AutoRound wrote.",
        ]
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in (
        (f"{name}.json", json.dumps({"bench": str(bench_dir), "rows": rows, "shares": shares}, indent=1) + "\n"),
        (f"{name}.md", "\n".join(lines) + "\n"),
    ):
        tmp = out / f".{fname}.tmp"
        tmp.write_text(text)
        tmp.replace(out / fname)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
