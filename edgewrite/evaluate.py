"""``edgewrite eval``: run an artifact on each task's evaluation rows and score them with the field's metrics.

Each task is scored on the sets EditEval and the Writing-Alpaca paper use for it, read from a data
folder in the layout of shared/data. On ``--split dev`` only rows that no training run may see are
used: official dev files, and for files that double as training data the hash-split dev bucket
(the same rule as ``edgewrite data``); rows whose source appears in the artifact's own training
data are dropped as well.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgewrite import metrics
from edgewrite.data import in_dev_bucket, normalize_key, read_jsonl
from edgewrite.errors import EdgewriteError
from edgewrite.tasks import TASK_NAMES, TASKS, build_prompt


@dataclass(frozen=True)
class EvalSet:
    task: str
    name: str
    files: dict[str, str]  # split -> path under the data dir
    metrics: tuple[str, ...]
    kind: str = "jsonl"  # or "m2"
    row_task: str | None = None  # keep only rows of this task (IteraTeR mixes three)
    split_by_hash: tuple[str, ...] = ()  # splits whose file also feeds training: use the dev bucket only
    tokenize: bool = False  # score GLEU on 13a tokens (the text is detokenized)


EVAL_SETS: tuple[EvalSet, ...] = (
    EvalSet(
        "grammar",
        "cweb-G",
        {"dev": "cweb/raw/data/m2/CWEB-G.dev.m2", "test": "cweb/raw/data/m2/CWEB-G.test.m2"},
        ("f0.5", "exact_match"),
        kind="m2",
        split_by_hash=("dev",),
    ),
    EvalSet(
        "grammar",
        "gmeg",
        {"dev": "gmeg/dev.jsonl", "test": "gmeg/test.jsonl"},
        ("gleu", "exact_match"),
        split_by_hash=("dev",),
    ),
    EvalSet("fluency", "jfleg", {"dev": "jfleg/dev.jsonl", "test": "jfleg/test.jsonl"}, ("gleu",), tokenize=True),
    EvalSet(
        "fluency",
        "iterater",
        {"dev": "iterater/dev.jsonl", "test": "iterater/test.jsonl"},
        ("sari",),
        row_task="fluency",
    ),
    EvalSet(
        "clarity",
        "iterater",
        {"dev": "iterater/dev.jsonl", "test": "iterater/test.jsonl"},
        ("sari",),
        row_task="clarity",
    ),
    EvalSet(
        "coherence",
        "iterater",
        {"dev": "iterater/dev.jsonl", "test": "iterater/test.jsonl"},
        ("sari",),
        row_task="coherence",
    ),
    EvalSet(
        "simplification",
        "asset",
        {"dev": "asset/dev.jsonl", "test": "asset/test.jsonl"},
        ("sari",),
        split_by_hash=("dev",),
    ),
    EvalSet(
        "simplification",
        "turkcorpus",
        {"dev": "turkcorpus/dev.jsonl", "test": "turkcorpus/test.jsonl"},
        ("sari",),
        split_by_hash=("dev",),
    ),
    EvalSet(
        "neutralization",
        "wnc",
        {"dev": "wnc_sample/train.jsonl", "test": "wnc/test.jsonl"},
        ("sari", "exact_match"),
        split_by_hash=("dev",),
    ),
    EvalSet("paraphrase", "stsb", {"dev": "stsb/dev.jsonl", "test": "stsb/test.jsonl"}, ("sari", "ibleu")),
    EvalSet("paraphrase", "mrpc", {"dev": "mrpc/dev.jsonl", "test": "mrpc/test.jsonl"}, ("sari", "ibleu")),
)

# The one number per task that the report compares (0-100): the paper's primary metric on the
# task's primary set.
HEADLINE = {
    "grammar": ("cweb-G", "f0.5"),
    "fluency": ("jfleg", "gleu"),
    "clarity": ("iterater", "sari"),
    "coherence": ("iterater", "sari"),
    "simplification": ("asset", "sari"),
    "neutralization": ("wnc", "sari"),
    "paraphrase": ("stsb", "sari"),
}
_SCALE_01 = {"f0.5", "precision", "recall", "gleu"}  # reported 0-1 by their scorers; shown 0-100


@dataclass
class EvalRows:
    spec: EvalSet
    rows: list[dict]
    m2: list[metrics.M2Sentence] = field(default_factory=list)


def _apply_m2(sentence: metrics.M2Sentence) -> list[str]:
    """Each annotator's corrected sentence (first alternative of every edit, in offset order)."""
    tokens = sentence.source.split()
    refs = []
    for edits in sentence.edits.values():
        out, offset = list(tokens), 0
        for start, end, _orig, corrections in sorted(edits, key=lambda e: (e[0], e[1])):
            new = corrections[0].split() if corrections else []
            out[start + offset : end + offset] = new
            offset += len(new) - (end - start)
        refs.append(" ".join(out))
    return refs


def load_eval_rows(
    spec: EvalSet, data_dir: Path, split: str, dev_fraction: float, exclude: set[str], limit: int | None
) -> EvalRows:
    rel = spec.files.get(split)
    if rel is None or not (data_dir / rel).is_file():
        return EvalRows(spec, [])
    path = data_dir / rel
    keep_bucket = split in spec.split_by_hash
    rows, m2 = [], []
    if spec.kind == "m2":
        for i, sent in enumerate(metrics.parse_m2(path.read_text(encoding="utf-8"))):
            rows.append({"id": f"{spec.name}-{split}-{i}", "source": sent.source, "references": _apply_m2(sent)})
            m2.append(sent)
    else:
        rows = [r for r in read_jsonl(path) if spec.row_task is None or r["task"] == spec.row_task]
    chosen, chosen_m2 = [], []
    for i, row in enumerate(rows):
        if keep_bucket and not in_dev_bucket(row["source"], dev_fraction):
            continue
        if normalize_key(row["source"]) in exclude:
            continue
        refs = [r for r in row["references"] if r.strip()]
        if not refs:
            raise EdgewriteError(f"{path}: row {row.get('id', i)} has no non-empty reference")
        chosen.append({"id": row.get("id", f"{spec.name}-{i}"), "source": row["source"], "references": refs})
        if m2:
            chosen_m2.append(m2[i])
        if limit and len(chosen) >= limit:
            break
    return EvalRows(spec, chosen, chosen_m2)


_LEAD_IN = re.compile(
    r"^(?:(?:sure|okay|ok|certainly)[,!.]?\s*)?"
    r"(?:here(?:'s| is| are)|the|this is the|a|an|my|revised|corrected|edited|improved|simplified|paraphrased|"
    r"rewritten|fixed|output|answer|response|result)\b"
    r"[^:\n]{0,80}?\b(?:version|sentence|text|paragraph|output|answer|response|rewrite|paraphrase|correction)s?\b"
    r"[^:\n]{0,60}:\s*",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^(?:output|answer|response|correction|paraphrase|simplified|corrected|revised)\s*:\s*", re.IGNORECASE
)


def clean_output(text: str, source: str = "") -> str:
    """One line of edited text from a model answer: no chat wrappers, no lead-in, no explanation."""
    text = text.replace("<|im_end|>", "").replace("</s>", "").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    stripped = _LABEL.sub("", _LEAD_IN.sub("", first, count=1), count=1)
    if not stripped and len(lines) > 1:  # "Here is the corrected sentence:" on a line of its own
        stripped = lines[1]
    text = stripped or first
    quoted = source.strip()[:1] in "\"'“"
    if not quoted and len(text) > 1 and text[0] in '"“' and text[-1] in '"”':
        text = text[1:-1].strip()
    return text


def _score(spec: EvalSet, er: EvalRows, outputs: list[str]) -> dict[str, float]:
    src = [r["source"] for r in er.rows]
    refs = [r["references"] for r in er.rows]
    scores: dict[str, float] = {}
    for name in spec.metrics:
        if name == "f0.5":
            m = metrics.m2_score(outputs, er.m2)
            scores.update(
                {
                    "f0.5": 100 * m["f0.5"],
                    "precision": 100 * m["precision"],
                    "recall": 100 * m["recall"],
                    "gold_edits": m["gold"],
                }
            )
        elif name == "gleu":
            if spec.tokenize:
                tok = metrics._tokenizer_13a()
                src_t, out_t = [tok(s) for s in src], [tok(o) for o in outputs]
                refs_t = [[tok(r) for r in rs] for rs in refs]
            else:
                src_t, out_t, refs_t = src, outputs, refs
            n = min(len(r) for r in refs_t)
            scores["gleu"] = 100 * metrics.gleu(src_t, out_t, [r[:n] for r in refs_t])
        elif name == "sari":
            scores["sari"] = metrics.sari(src, outputs, refs)
        elif name == "ibleu":
            scores["ibleu"] = metrics.ibleu(src, outputs, refs)
            scores["bleu"] = metrics.bleu(outputs, refs)
        elif name == "exact_match":
            scores["exact_match"] = metrics.exact_match(outputs, refs)
    return {k: round(v, 4) for k, v in scores.items()}


def select_sets(tasks: list[str] | None) -> list[EvalSet]:
    tasks = tasks or list(TASK_NAMES)
    for t in tasks:
        if t not in TASKS:
            raise EdgewriteError(f"unknown task '{t}'; tasks: {', '.join(TASK_NAMES)}")
    return [s for s in EVAL_SETS if s.task in tasks]


def training_keys(manifest: dict) -> tuple[set[str], float]:
    """Normalized sources the artifact was trained on, and the dev fraction of its data split."""
    data = manifest.get("data") or {}
    path = Path(data["path"]) if data.get("path") else None
    if path is None or not (path / "train.jsonl").is_file():
        return set(), 0.1
    keys = {
        normalize_key(json.loads(line)["source"])
        for line in (path / "train.jsonl").read_text().splitlines()
        if line.strip()
    }
    fraction = 0.1
    if (path / "manifest.json").is_file():
        fraction = json.loads((path / "manifest.json").read_text()).get("dev_fraction", 0.1)
    return keys, fraction


def gather(
    data_dir: Path,
    tasks: list[str] | None,
    split: str,
    limit: int | None,
    exclude: set[str] | None = None,
    dev_fraction: float = 0.1,
) -> list[EvalRows]:
    if not data_dir.is_dir():
        raise EdgewriteError(f"data directory {data_dir} does not exist; pass --data-dir")
    sets = [load_eval_rows(s, data_dir, split, dev_fraction, exclude or set(), limit) for s in select_sets(tasks)]
    for task in {s.spec.task for s in sets}:
        if not any(s.rows for s in sets if s.spec.task == task):
            raise EdgewriteError(f"task '{task}' has no rows in the '{split}' split under {data_dir}")
    return [s for s in sets if s.rows]


# Below this many gold edits an M2 F0.5 says little (with none, the scorer's 0/0 conventions give
# "no edits" a perfect 100 and any edit 0): the task's headline then comes from its next set.
MIN_GOLD_EDITS = 20


def score_outputs(sets: list[EvalRows], outputs: dict[str, list[str]]) -> dict[str, Any]:
    """Per-set scores, per-task headline (0-100) with the set/metric it came from, and their mean."""
    per_set = {f"{s.spec.task}/{s.spec.name}": _score(s.spec, s, outputs[f"{s.spec.task}/{s.spec.name}"]) for s in sets}
    headline, source = {}, {}
    for task, (name, metric) in HEADLINE.items():
        candidates = [(f"{task}/{name}", metric)] + [
            (f"{s.spec.task}/{s.spec.name}", s.spec.metrics[0]) for s in sets if s.spec.task == task
        ]
        for key, m in candidates:
            scores = per_set.get(key)
            if scores is None or m not in scores:
                continue
            if m == "f0.5" and scores.get("gold_edits", 0) < MIN_GOLD_EDITS:
                continue
            headline[task], source[task] = scores[m], f"{key.split('/', 1)[1]} {m}"
            break
    mean = round(sum(headline.values()) / len(headline), 4) if headline else None
    return {"sets": per_set, "headline": headline, "headline_source": source, "mean": mean}


def run_eval(
    runtime: Any, style: str, sets: list[EvalRows], progress: Callable[[int], None] | None = None, batch_size: int = 1
) -> tuple[dict[str, list[str]], list[dict], list[dict]]:
    """Generate for every row; returns outputs per set, row records and per-request timings."""
    outputs: dict[str, list[str]] = {}
    records, timings = [], []
    for s in sets:
        key = f"{s.spec.task}/{s.spec.name}"
        instruction = TASKS[s.spec.task].default_instruction
        outs = []
        for start in range(0, len(s.rows), batch_size):
            chunk = s.rows[start : start + batch_size]
            prompts = [build_prompt(runtime.tokenizer, instruction, r["source"], style) for r in chunk]
            budget = max(len(runtime.tokenize(r["source"])) for r in chunk)
            t0 = time.perf_counter()
            gens = runtime.generate(prompts, max_new_tokens=min(512, int(budget * 1.5) + 16))
            wall = time.perf_counter() - t0
            for row, gen in zip(chunk, gens, strict=True):
                text = clean_output(gen.text, row["source"])
                outs.append(text)
                records.append(
                    {
                        "set": key,
                        "id": row["id"],
                        "source": row["source"],
                        "output": text,
                        "raw_output": gen.text,
                        "references": row["references"],
                        "finish": gen.finish,
                    }
                )
                timings.append(
                    {
                        "ttft_s": gen.ttft_s,
                        "decode_s": gen.decode_s,
                        "new_tokens": gen.new_tokens,
                        "prompt_tokens": gen.prompt_tokens,
                        "wall_s": wall / len(chunk),
                    }
                )
            if progress:
                progress(len(chunk))
        outputs[key] = outs
    return outputs, records, timings
