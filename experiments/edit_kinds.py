"""Issue #30: would offering only some kinds of grammar edit raise precision?

The served model's grammar edits (benchmarks/results/edit_confidence/rows.jsonl.gz: every CoNLL-2013 and
CWEB-G dev row, with each edit's kind from edgewrite.edit.spans) are applied kind by kind: for each kind, the
M2 precision of that kind's edits alone (the unit keeps only them) and the F0.5 of everything but that kind,
paired against all edits (95 % bootstrap). A kind filter pays if dropping a kind raises F0.5 on both sets.

    python experiments/edit_kinds.py [DATA_DIR]    # seconds; writes benchmarks/results/edit_kinds.{json,md}
"""

from __future__ import annotations

import collections
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgewrite.artifacts import write_text_atomic  # noqa: E402
from edgewrite.bootstrap import paired  # noqa: E402
from edgewrite.edit.spans import Suggestion, apply_suggestions  # noqa: E402
from edgewrite.evaluate import gather, set_scorers  # noqa: E402

CACHE = ROOT / "benchmarks" / "results" / "edit_confidence" / "rows.jsonl.gz"
OUT = ROOT / "benchmarks" / "results"
SETS = ("grammar/conll2013", "grammar/cweb-G")
# The kinds whose edits alone were the most precise on CoNLL-2013 dev (the five morphosyntactic kinds of the
# CoNLL-2013 shared task: articles/determiners, noun number, verb form, prepositions, word form); chosen by
# looking at that set, so CWEB-G is the check.
GRAMMATICAL = ("determiner", "noun number", "verb form", "preposition", "word form")


def _outputs(rows: list[dict], decoded: list[dict], keep) -> list[str]:  # noqa: ANN001
    texts = []
    for row, rec in zip(rows, decoded, strict=True):
        edits = [Suggestion(**e) for e in rec["edits"]]
        kept = [e for e in edits if keep(e.kind)]
        texts.append(rec["output"] if len(kept) == len(edits) else apply_suggestions(row["source"], kept)[0])
    return texts


def main() -> None:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    if not CACHE.is_file():
        sys.exit(f"{CACHE.relative_to(ROOT)} is missing: run `python benchmarks/edit_confidence.py` first")
    if not data_dir.is_dir():
        sys.exit(f"data folder {data_dir} does not exist: give the shared data folder as the first argument")
    sets = {s.key: s for s in gather(data_dir, ["grammar"], "dev", None) if s.key in SETS}
    with gzip.open(CACHE, "rt", encoding="utf-8") as f:
        decoded: dict[str, list[dict]] = collections.defaultdict(list)
        for line in f:
            rec = json.loads(line)
            decoded[rec["set"]].append(rec)
    doc: dict = {"command": "python experiments/edit_kinds.py", "source": str(CACHE.relative_to(ROOT)), "sets": {}}
    missing = [k for k in SETS if k not in sets or len(sets[k].rows) != len(decoded[k])]
    if missing:
        sys.exit(
            f"{', '.join(missing)}: the data in {data_dir} is not what {CACHE.name} was decoded from; decode again"
        )
    for key, s in sets.items():
        dec = decoded[key]
        plain = set_scorers(s, _outputs(s.rows, dec, lambda _k: True))
        kinds = collections.Counter(e["kind"] for rec in dec for e in rec["edits"])
        entry = {
            "rows": len(s.rows),
            "all": {m: round(plain[m].value(), 2) for m in ("precision", "recall", "f0.5")},
            "kinds": {},
        }
        for kind, n in kinds.most_common():
            alone = set_scorers(s, _outputs(s.rows, dec, lambda k, kind=kind: k == kind))
            without = set_scorers(s, _outputs(s.rows, dec, lambda k, kind=kind: k != kind))
            diff = paired({"f0.5": without["f0.5"]}, {"f0.5": plain["f0.5"]})["f0.5"]
            entry["kinds"][kind] = {
                "edits": n,
                "precision_alone": round(alone["precision"].value(), 1),
                "f0.5_without": round(without["f0.5"].value(), 2),
                "without_vs_all": diff.as_dict(),
            }
        only = set_scorers(s, _outputs(s.rows, dec, lambda k: k in GRAMMATICAL))
        diff = paired(only, plain)
        entry["only_grammatical"] = {
            m: {"value": round(only[m].value(), 2), "vs_all": diff[m].as_dict()}
            for m in ("precision", "recall", "f0.5")
        }
        doc["sets"][key] = entry
    write_text_atomic(OUT / "edit_kinds.json", json.dumps(doc, indent=1) + "\n")
    lines = [
        "# Grammar edits by kind (the served model, dev)",
        "",
        f"Command: `{doc['command']}` (from `{doc['source']}`)",
        "",
    ]
    for key, entry in doc["sets"].items():
        a = entry["all"]
        lines += [
            f"## {key} ({entry['rows']} rows): all edits P {a['precision']} / R {a['recall']} / F0.5 {a['f0.5']}",
            "",
            "| kind | edits | precision of this kind alone | F0.5 without it | without - all [95 % CI] |",
            "|---|---|---|---|---|",
        ]
        for kind, k in entry["kinds"].items():
            d = k["without_vs_all"]
            star = "*" if d["lo"] > 0 or d["hi"] < 0 else ""
            lines.append(
                f"| {kind} | {k['edits']} | {k['precision_alone']} | {k['f0.5_without']} | "
                f"{d['value']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]{star} |"
            )
        g = entry["only_grammatical"]
        lines += [
            "",
            f"Only {', '.join(GRAMMATICAL)}: "
            + ", ".join(
                f"{m} {g[m]['value']} ({g[m]['vs_all']['value']:+.2f} [{g[m]['vs_all']['lo']:+.2f}, "
                f"{g[m]['vs_all']['hi']:+.2f}])"
                for m in ("precision", "recall", "f0.5")
            ),
            "",
        ]
    write_text_atomic(OUT / "edit_kinds.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
