"""``edgewrite eval``: run an artifact on each task's evaluation rows and score them with the field's metrics.

Each task is scored on the sets EditEval and the Writing-Alpaca paper use for it, read from a data
folder in the layout of shared/data. On ``--split dev`` only rows that no training run may see are
used: official dev files, and for files that double as training data the hash-split dev bucket
(the same rule as ``edgewrite data``); rows whose source appears in the artifact's own training
data are dropped as well.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgewrite import bootstrap, metrics
from edgewrite.data import in_dev_bucket, normalize_key, read_jsonl
from edgewrite.errors import EdgewriteError
from edgewrite.tasks import TASKS


@dataclass(frozen=True)
class EvalSet:
    task: str
    name: str
    files: dict[str, str | tuple[str, ...]]  # split -> path under the data dir (or alternatives, first found)
    metrics: tuple[str, ...]
    kind: str = "jsonl"  # or "m2"
    row_task: str | None = None  # keep only rows of this task (IteraTeR mixes three)
    split_by_hash: tuple[str, ...] = ()  # splits whose file also feeds training: use the dev bucket only
    tokenize: bool = False  # score GLEU on 13a tokens (the text is detokenized)
    layout_marker: dict[str, str] = field(default_factory=dict)  # split -> a file whose presence says the set is there

    @property
    def key(self) -> str:
        return f"{self.task}/{self.name}"

    def path(self, data_dir: Path, split: str) -> Path | None:
        """The set's file for ``split`` under ``data_dir``, None if the set is absent there; a set that is
        half there (its test.jsonl without the M2 gold it is scored against) is an error."""
        rel = self.files.get(split)
        if rel is None:
            return None
        for candidate in (rel,) if isinstance(rel, str) else rel:
            if (data_dir / candidate).is_file():
                return data_dir / candidate
        marker = self.layout_marker.get(split)
        if marker and (data_dir / marker).is_file():
            missing = rel if isinstance(rel, str) else " or ".join(rel)
            raise EdgewriteError(
                f"{data_dir / marker} is there but its gold file {data_dir / missing} is missing; "
                f"add it (the layout of the official {self.name} release) or remove {marker}"
            )
        return None


EVAL_SETS: tuple[EvalSet, ...] = (
    EvalSet(
        "grammar",
        "conll2014",
        {"test": "conll2014/raw/conll14st-test-data/noalt/official-2014.combined.m2"},
        ("f0.5", "exact_match"),
        kind="m2",
        layout_marker={"test": "conll2014/test.jsonl"},
    ),
    EvalSet(
        "grammar",
        "conll2013",
        {"dev": "conll2013/raw/release2.3.1/revised/data/official-preprocessed.m2"},
        ("f0.5", "exact_match"),
        kind="m2",
        split_by_hash=("dev",),
    ),
    EvalSet(
        "grammar",
        "cweb-G",
        {"dev": "cweb/raw/data/m2/CWEB-G.dev.m2", "test": "cweb/raw/data/m2/CWEB-G.test.m2"},
        ("f0.5", "exact_match"),
        kind="m2",
        split_by_hash=("dev",),
        layout_marker={"test": "cweb/test.jsonl"},
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
        {"dev": "wnc_sample/train.jsonl", "test": ("wnc/test.jsonl", "wnc_sample/test.jsonl")},
        ("sari", "exact_match"),
        split_by_hash=("dev",),
    ),
    EvalSet("paraphrase", "stsb", {"dev": "stsb/dev.jsonl", "test": "stsb/test.jsonl"}, ("sari", "ibleu")),
    EvalSet("paraphrase", "mrpc", {"dev": "mrpc/dev.jsonl", "test": "mrpc/test.jsonl"}, ("sari", "ibleu")),
)

# The one number per task that the report compares (0-100): the paper's primary metric on the
# task's primary set, in order of preference (the first set present in the split wins). Grammar: the
# M2 F0.5 of CoNLL-2014 (the paper's test set), on dev the CoNLL-2013 bucket (>300 gold edits).
HEADLINE: dict[str, tuple[tuple[str, str], ...]] = {
    "grammar": (("conll2014", "f0.5"), ("conll2013", "f0.5"), ("cweb-G", "f0.5"), ("gmeg", "gleu")),
    "fluency": (("jfleg", "gleu"),),
    "clarity": (("iterater", "sari"),),
    "coherence": (("iterater", "sari"),),
    "simplification": (("asset", "sari"), ("turkcorpus", "sari")),
    "neutralization": (("wnc", "sari"),),
    "paraphrase": (("stsb", "sari"), ("mrpc", "sari")),
}
SAMPLE_SEED = 1234  # --limit N draws the same N rows of a set every time


@dataclass
class EvalRows:
    spec: EvalSet
    rows: list[dict]
    m2: list[metrics.M2Sentence] = field(default_factory=list)
    total: int = 0  # eligible rows before --limit sampling

    @property
    def key(self) -> str:
        return self.spec.key


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


def _read_set(spec: EvalSet, path: Path, split: str) -> tuple[list[dict], list[metrics.M2Sentence]]:
    if spec.kind == "m2":
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise EdgewriteError(f"{path} is not UTF-8 text (byte {e.start}); give the M2 file as published") from e
        try:
            m2 = metrics.parse_m2(text)
        except ValueError as e:
            raise EdgewriteError(f"{path}:{e}") from e
        rows = [
            {"id": f"{spec.name}-{split}-{i}", "source": s.source, "references": _apply_m2(s)} for i, s in enumerate(m2)
        ]
        return rows, m2
    return [r for r in read_jsonl(path) if spec.row_task is None or r["task"] == spec.row_task], []


def load_eval_rows(
    spec: EvalSet,
    data_dir: Path,
    split: str,
    dev_fraction: float,
    exclude: set[str],
    limit: int | None,
    seed: int = SAMPLE_SEED,
) -> EvalRows:
    """The set's rows that no training run may see; with ``limit``, a seeded random sample of them
    (kept in file order), never the first N."""
    path = spec.path(data_dir, split)
    if path is None:
        return EvalRows(spec, [])
    rows, m2 = _read_set(spec, path, split)
    keep_bucket = split in spec.split_by_hash
    chosen: list[int] = []
    for i, row in enumerate(rows):
        if keep_bucket and not in_dev_bucket(row["source"], dev_fraction):
            continue
        if normalize_key(row["source"]) in exclude:
            continue
        if not any(r.strip() for r in row["references"]):
            if spec.kind == "m2":  # a whole-sentence deletion: the M2 gold scores it, the text refs cannot
                continue
            raise EdgewriteError(f"{path}: row {row.get('id', i)} has no non-empty reference")
        chosen.append(i)
    total = len(chosen)
    if limit is not None and limit < total:
        chosen = sorted(random.Random(f"{seed}-{spec.key}-{split}").sample(chosen, limit))
    out = [
        {
            "id": rows[i].get("id", f"{spec.name}-{i}"),
            "source": rows[i]["source"],
            "references": [r for r in rows[i]["references"] if r.strip()],
        }
        for i in chosen
    ]
    return EvalRows(spec, out, [m2[i] for i in chosen] if m2 else [], total)


def set_scorers(er: EvalRows, outputs: list[str], only: tuple[str, ...] | None = None) -> dict[str, bootstrap.Scorer]:
    """One resamplable scorer per metric of the set (``only``: just these metrics)."""
    spec = er.spec
    src, outs, refs = [r["source"] for r in er.rows], list(outputs), [r["references"] for r in er.rows]
    wanted = [m for m in spec.metrics if only is None or m in only]
    scorers: dict[str, bootstrap.Scorer] = {}
    for name in wanted:
        if name == "f0.5":
            m2 = bootstrap.make_scorer("f0.5", src, outs, refs, er.m2)
            scorers["f0.5"] = m2
            if only is None:
                for extra in ("precision", "recall"):
                    scorers[extra] = bootstrap.M2Scorer(m2.candidates, extra)
        elif name == "gleu" and spec.tokenize:
            tok = metrics._tokenizer_13a()
            scorers[name] = bootstrap.make_scorer(
                name, [tok(s) for s in src], [tok(o) for o in outs], [[tok(r) for r in rs] for rs in refs]
            )
        elif name == "ibleu":
            scorers["ibleu"] = bootstrap.make_scorer("ibleu", src, outs, refs)
            if only is None:
                scorers["bleu"] = scorers["ibleu"].to_refs
        else:
            scorers[name] = bootstrap.make_scorer(name, src, outs, refs)
    return scorers


def _score(er: EvalRows, outputs: list[str]) -> dict[str, float]:
    scores = {name: s.value() for name, s in set_scorers(er, outputs).items()}
    if "f0.5" in er.spec.metrics:
        scores["gold_edits"] = float(_gold_edits(er))
    return {k: round(v, 4) for k, v in scores.items()}


def _gold_edits(er: EvalRows) -> int:
    """Gold edits of the first annotator of every sentence (what the M2 scorer's recall rests on)."""
    return sum(len(next(iter(s.edits.values()))) for s in er.m2)


def custom_set(task: str) -> EvalSet:
    """A custom task's evaluation set: its own folder, in the layout of the seven (dev.jsonl, test.jsonl)."""
    from edgewrite.tasks import CUSTOM

    metric = CUSTOM[task]["metric"]
    return EvalSet(task, task, {"dev": f"{task}/dev.jsonl", "test": f"{task}/test.jsonl"}, (metric,))


def select_sets(tasks: list[str] | None) -> list[EvalSet]:
    from edgewrite.tasks import CUSTOM, task_names

    tasks = tasks or list(task_names())
    for t in tasks:
        if t not in TASKS:
            raise EdgewriteError(f"unknown task '{t}'; tasks: {', '.join(task_names())}")
    return [s for s in EVAL_SETS if s.task in tasks] + [custom_set(t) for t in tasks if t in CUSTOM]


def training_keys(manifest: dict) -> tuple[set[str], float]:
    """Normalized sources the artifact was trained on, and the dev fraction of its data split."""
    data = manifest.get("data") or {}
    path = Path(data["path"]) if data.get("path") else None
    if path is None or not (path / "train.jsonl").is_file():
        return set(), 0.1
    keys = {
        normalize_key(json.loads(line)["source"])
        for line in (path / "train.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    fraction = 0.1
    if (path / "manifest.json").is_file():
        fraction = json.loads((path / "manifest.json").read_text()).get("dev_fraction", 0.1)
    return keys, fraction


# Below this many gold edits an M2 F0.5 says little (with none, the scorer's 0/0 conventions give
# "no edits" a perfect 100 and any edit 0): the task's headline then comes from its next set.
MIN_GOLD_EDITS = 20


def headline_choice(sets: list[EvalRows]) -> dict[str, tuple[str, str]]:
    """Per task: the (set key, metric) that gives its headline among the sets present."""
    by_key = {s.key: s for s in sets}
    choice = {}
    from edgewrite.tasks import CUSTOM

    preferences = {**HEADLINE, **{t: ((t, spec["metric"]),) for t, spec in CUSTOM.items()}}
    for task, prefs in preferences.items():
        candidates = list(prefs) + [(s.spec.name, s.spec.metrics[0]) for s in sets if s.spec.task == task]
        for name, metric in candidates:
            er = by_key.get(f"{task}/{name}")
            if er is None or metric not in er.spec.metrics:
                continue
            if metric == "f0.5" and _gold_edits(er) < MIN_GOLD_EDITS:
                continue
            choice[task] = (er.key, metric)
            break
    return choice


def gather(
    data_dir: Path,
    tasks: list[str] | None,
    split: str,
    limit: int | None,
    exclude: set[str] | None = None,
    dev_fraction: float = 0.1,
    headline_only: bool = False,
) -> list[EvalRows]:
    """The evaluation rows of every set of ``tasks`` present in ``data_dir`` for ``split``; with
    ``headline_only``, only the set that gives each task's headline number."""
    if not data_dir.is_dir():
        raise EdgewriteError(f"data directory {data_dir} does not exist; pass --data-dir")
    if limit is not None and limit < 1:
        raise EdgewriteError(f"--limit {limit}: give a positive number of rows per set, or leave it out for all")
    sets = [load_eval_rows(s, data_dir, split, dev_fraction, exclude or set(), limit) for s in select_sets(tasks)]
    from edgewrite.tasks import task_names

    for task in tasks or task_names():
        if not any(s.rows for s in sets if s.spec.task == task):
            raise EdgewriteError(
                f"task '{task}' has no rows in the '{split}' split under {data_dir}; "
                "point --data-dir at a folder in the layout of shared/data or drop the task"
            )
    sets = [s for s in sets if s.rows]
    if headline_only:
        keys = {key for key, _ in headline_choice(sets).values()}
        sets = [s for s in sets if s.key in keys]
    return sets


def headline_scorers(sets: list[EvalRows], outputs: dict[str, list[str]]) -> dict[str, bootstrap.Scorer]:
    """Per task, the resamplable scorer of its headline set and metric (for intervals and comparisons)."""
    by_key = {s.key: s for s in sets}
    return {
        task: set_scorers(by_key[key], outputs[key], only=(metric,))[metric]
        for task, (key, metric) in headline_choice(sets).items()
    }


def score_outputs(
    sets: list[EvalRows], outputs: dict[str, list[str]], resamples: int = bootstrap.RESAMPLES
) -> dict[str, Any]:
    """Per-set scores; per-task headline (0-100) with the set/metric it came from and its 95 %
    bootstrap interval; their mean with its interval."""
    per_set = {s.key: _score(s, outputs[s.key]) for s in sets}
    choice = headline_choice(sets)
    headline = {task: per_set[key][metric] for task, (key, metric) in choice.items()}
    source = {task: f"{key.split('/', 1)[1]} {metric}" for task, (key, metric) in choice.items()}
    result: dict[str, Any] = {
        "sets": per_set,
        "headline": headline,
        "headline_source": source,
        "mean": round(sum(headline.values()) / len(headline), 4) if headline else None,
    }
    if resamples and headline:
        ci = bootstrap.interval(headline_scorers(sets, outputs), resamples=resamples)
        result["headline_ci"] = {t: ci[t].as_dict() for t in headline}
        result["mean_ci"] = ci["mean"].as_dict()
        result["resamples"] = resamples
        result["headline_rows"] = {
            task: len(next(s for s in sets if s.key == key).rows) for task, (key, _) in choice.items()
        }
    return result


def run_eval(
    editor: Any, sets: list[EvalRows], progress: Callable[[int], None] | None = None, batch_size: int = 1
) -> tuple[dict[str, list[str]], list[dict], list[dict]]:
    """Edit every row (``editor``: see edgewrite.edit); returns outputs per set, row records and
    per-request timings (all in row order). With ``batch_size`` > 1, rows of similar length share a
    batch (less padding, and no short answer waits for a long one's token budget)."""
    from edgewrite.edit import edit_timed

    outputs: dict[str, list[str]] = {}
    records, timings = [], []
    for s in sets:
        texts = [r["source"] for r in s.rows]
        lengths = [editor.budget(t) for t in texts] if batch_size > 1 else [0] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        done: dict[int, tuple[Any, dict]] = {}
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            edits, times = edit_timed(editor, s.spec.task, [texts[i] for i in chunk])
            for i, e, t in zip(chunk, edits, times, strict=True):
                done[i] = (e, {**t, "batch": len(chunk)})
            if progress:
                progress(len(chunk))
        outs = []
        for i, row in enumerate(s.rows):
            e, t = done[i]
            outs.append(e.output)
            records.append(
                {
                    "set": s.key,
                    "id": row["id"],
                    "source": row["source"],
                    "output": e.output,
                    "raw_output": e.raw,
                    "references": row["references"],
                    "finish": e.finish,
                }
            )
            timings.append(t)
        outputs[s.key] = outs
    return outputs, records, timings


def _writable_out(out: Path) -> None:
    """Fail before any generation if the results cannot be written."""
    if out.exists() and not out.is_dir():
        raise EdgewriteError(f"--out {out} is a file; give a folder for eval.json and rows.jsonl")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise EdgewriteError(f"cannot write into {out} ({e.strerror}); choose a writable --out") from e


def evaluate(
    artifact: Path,
    data_dir: Path,
    tasks: list[str] | None = None,
    split: str = "dev",
    limit: int | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    out: Path | None = None,
    headline_only: bool = False,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    pre: str | None = None,
) -> tuple[dict[str, Any], Path]:
    """Score ``artifact`` on the evaluation rows it was not trained on; write eval.json and rows.jsonl."""
    from edgewrite.artifacts import read_manifest
    from edgewrite.edit import SYSTEMS, load_editor

    if split not in ("dev", "test"):
        raise EdgewriteError(f"--split {split}: use dev or test")
    if batch_size < 1:
        raise EdgewriteError(f"--batch-size {batch_size}: give a positive number")
    system = str(artifact) in SYSTEMS and not Path(artifact).exists()
    manifest = {"kind": "system"} if system else read_manifest(artifact)
    if manifest.get("kind") in ("adapter", "data"):
        raise EdgewriteError(f"{artifact} is a '{manifest['kind']}' artifact; eval takes a model (merge it first)")
    target = out or (Path("runs") / "eval" / str(artifact) if system else Path(artifact) / "eval")
    _writable_out(target)
    exclude, fraction = training_keys(manifest)
    sets = gather(data_dir, tasks, split, limit, exclude, fraction, headline_only=headline_only)
    editor, manifest = load_editor(artifact, device=device, batch_size=batch_size, pre=pre)
    if on_start:
        on_start(sum(len(s.rows) for s in sets))
    outputs, records, _ = run_eval(editor, sets, progress=progress, batch_size=batch_size if editor.batches else 1)
    result = {
        "artifact": str(artifact),
        "split": split,
        "limit": limit,
        "rows": len(records),
        "sample_seed": SAMPLE_SEED if limit else None,
        "pre": pre,
        **score_outputs(sets, outputs),
    }
    for name, text in (
        ("eval.json", json.dumps(result, indent=2) + "\n"),
        ("rows.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)),
    ):
        tmp = target / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target / name)
    return result, target
