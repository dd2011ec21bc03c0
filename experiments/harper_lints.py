"""Which of Harper's lint kinds to apply, decided on dev.

Every grammar and fluency dev row is linted once (with the tokenization and lowercase rules of
edgewrite/edit/harper.py on, and no kind skipped); then lint kinds are dropped one at a time
(backward elimination) while dropping one raises the objective: the mean of the two headline scores,
JFLEG GLEU (fluency) and CoNLL-2013 M2 F0.5 (grammar). The kinds it drops are HarperEditor.SKIP_KINDS.

    python experiments/harper_lints.py

Writes benchmarks/results/harper_lints.{json,md}.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.edit.harper import SKIP_KINDS, HarperEditor  # noqa: E402
from edgewrite.evaluate import gather, score_outputs  # noqa: E402

OBJECTIVE = ("fluency", "grammar")


def main() -> None:
    data = ROOT.parent / "shared" / "data"
    sets = gather(data, ["grammar", "fluency"], "dev", None)
    editor = HarperEditor(skip_kinds=frozenset())
    t0 = time.perf_counter()
    lints = {s.key: [editor.lints(r["source"]) for r in s.rows] for s in sets}
    lint_ms = (time.perf_counter() - t0) / sum(len(s.rows) for s in sets) * 1000
    kinds = Counter(lint.lint_kind for rows in lints.values() for row in rows for lint in row)

    def outputs(skip: set[str]) -> dict[str, list[str]]:
        out = {}
        for s in sets:
            texts = []
            for row, found in zip(s.rows, lints[s.key], strict=True):
                text = row["source"]
                for lint in reversed([x for x in found if x.lint_kind not in skip]):
                    text = editor.linter.apply_suggestion(text, lint, lint.suggestions[0])
                texts.append(text)
            out[s.key] = texts
        return out

    def score(skip: set[str]) -> tuple[float, dict]:
        q = score_outputs(sets, outputs(skip), resamples=0)
        return sum(q["headline"][t] for t in OBJECTIVE) / len(OBJECTIVE), q

    copy = score_outputs(sets, {s.key: [r["source"] for r in s.rows] for s in sets}, resamples=0)
    base, q_all = score(set())
    single = {k: round(score({k})[0] - base, 3) for k in kinds}
    skip: set[str] = set()
    best = base
    steps = []
    while True:
        trials = {k: score(skip | {k})[0] for k in kinds if k not in skip}
        if not trials:
            break
        k, value = max(trials.items(), key=lambda kv: kv[1])
        if value <= best + 1e-9:
            break
        skip.add(k)
        steps.append({"dropped": k, "objective": round(value, 4)})
        best = value
    _, q_best = score(skip)
    result = {
        "benchmark": "harper_lints",
        "command": "python experiments/harper_lints.py",
        "rows": {s.key: len(s.rows) for s in sets},
        "lint_ms_per_row": round(lint_ms, 2),
        "lints_per_kind": dict(kinds.most_common()),
        "objective": "mean of " + ", ".join(f"{t} ({copy['headline_source'][t]})" for t in OBJECTIVE),
        "copy": {t: copy["headline"][t] for t in OBJECTIVE},
        "all_kinds": {t: q_all["headline"][t] for t in OBJECTIVE},
        "objective_all_kinds": round(base, 4),
        "change_when_dropped_alone": single,
        "elimination": steps,
        "skip_kinds": sorted(skip),
        "chosen": {t: q_best["headline"][t] for t in OBJECTIVE},
        "chosen_sets": q_best["sets"],
        "in_code": sorted(SKIP_KINDS),
    }
    out = ROOT / "benchmarks" / "results"
    (out / "harper_lints.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Harper: which lint kinds to apply (decided on dev)",
        "",
        f"Command: `{result['command']}`. Objective: {result['objective']}; rows: {result['rows']}; "
        f"{lint_ms:.1f} ms per row to lint.",
        "",
        "| lint kind | lints on dev | objective change when dropped alone | dropped |",
        "|---|---|---|---|",
    ]
    for k, n in kinds.most_common():
        md.append(f"| {k} | {n} | {single[k]:+.3f} | {'yes' if k in skip else ''} |")
    md += [
        "",
        "| | " + " | ".join(OBJECTIVE) + " |",
        "|---|" + "---|" * len(OBJECTIVE),
        "| copy | " + " | ".join(f"{result['copy'][t]:.2f}" for t in OBJECTIVE) + " |",
        "| every kind | " + " | ".join(f"{result['all_kinds'][t]:.2f}" for t in OBJECTIVE) + " |",
        "| chosen kinds | " + " | ".join(f"{result['chosen'][t]:.2f}" for t in OBJECTIVE) + " |",
        "",
        f"Dropped (in this order): {', '.join(s['dropped'] for s in steps) or 'none'}. "
        f"In the code (HarperEditor.SKIP_KINDS): {', '.join(result['in_code'])}.",
        "",
    ]
    (out / "harper_lints.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
