"""How the edit records agree with human-made and ERRANT-made M2 gold edits on the dev grammar sets.

For each annotator of each sentence, the corrected sentence is rebuilt from that annotator's gold
edits, `edgewrite.edit.spans.align` re-derives the edits from (source, corrected), and they are compared
with the gold: span + correction agreement (precision, recall, F1), and, for agreeing edits whose
gold type has a counterpart, whether `classify` gives a matching kind.

    python benchmarks/edit_alignment.py

Writes benchmarks/results/edit_alignment/{results.json,results.md,kinds.md}.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.edit.spans import m2_agreement  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SETS = {
    "CoNLL-2013 (NUCLE annotators)": DATA / "conll2013/raw/release2.3.1/revised/data/official-preprocessed.m2",
    "CWEB-G dev (ERRANT-made, 2 annotators)": DATA / "cweb/raw/data/m2/CWEB-G.dev.m2",
}
OUT = ROOT / "benchmarks" / "results" / "edit_alignment"


def main() -> None:
    results = {}
    for name, path in SETS.items():
        t0 = time.perf_counter()
        results[name] = m2_agreement(path.read_text(encoding="utf-8")) | {
            "file": str(path.relative_to(DATA.parent)),
            "seconds": round(time.perf_counter() - t0, 1),
        }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    doc = {
        "command": "python benchmarks/edit_alignment.py",
        "commit": commit.stdout.strip(),
        "python": platform.python_version(),
        "sets": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(OUT / "results.json")
    lines = [
        f"Command: `{doc['command']}` (commit {doc['commit']}).",
        "",
        "| gold | sentence × annotator | gold edits | our edits | span P | span R | span F1 "
        "| kind agreement (typed edits) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['sentences']:,} | {r['gold_edits']:,} | {r['aligned_edits']:,} | "
            f"{100 * r['span_precision']:.1f} | {100 * r['span_recall']:.1f} | {100 * r['span_f1']:.1f} | "
            f"{100 * r['kind_agreement']:.1f} % ({r['typed_edits']:,}) |"
        )
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    lines = [f"Command: `{doc['command']}`. Kinds given per gold type (agreeing edits; the most frequent types).", ""]
    for name, r in results.items():
        lines.append(f"**{name}**")
        lines.append("")
        rows = sorted(r["kinds_by_gold_type"].items(), key=lambda kv: -sum(kv[1].values()))[:12]
        for gold, kinds in rows:
            shown = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
            lines.append(f"- {gold}: {shown}")
        lines.append("")
    (OUT / "kinds.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
