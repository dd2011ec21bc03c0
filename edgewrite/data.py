"""Build the instruction-tuning set for the seven writing tasks from JSONL files or hub data sets.

Input rows follow the layout of shared/data: ``{"task", "source", "references": [...], "id"}``
(the Alpaca sample also carries ``instruction`` and ``input``). Output: ``train.jsonl`` and
``dev.jsonl`` of rows ``{id, task, dataset, instruction, source, references}`` plus a manifest.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError
from edgewrite.recipe import DataConfig, DataSource
from edgewrite.tasks import GENERAL, TASKS, pick_instruction

_NON_WORD = re.compile(r"[\W_]+")
# grammarly/coedit's task labels, for users who name it instead of a folder.
_COEDIT_TASKS = {
    "gec": "grammar",
    "fluency": "fluency",
    "clarity": "clarity",
    "coherence": "coherence",
    "simplification": "simplification",
    "neutralize": "neutralization",
    "paraphrase": "paraphrase",
}


def normalize_key(text: str) -> str:
    """Case, spacing and punctuation removed: ``do n't`` and ``don't`` give the same key."""
    return _NON_WORD.sub("", text.lower())


def in_dev_bucket(source: str, fraction: float) -> bool:
    digest = hashlib.sha256(normalize_key(source).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a malformed line is reported with its file and line number."""
    rows = []
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        lineno = path.read_bytes()[: e.start].count(b"\n") + 1
        raise EdgewriteError(f"{path}:{lineno}: not UTF-8 text; give JSONL rows in UTF-8") from e
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise EdgewriteError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
        if not isinstance(row, dict):
            raise EdgewriteError(f"{path}:{lineno}: expected a JSON object")
        for key in ("task", "source", "references"):
            if key not in row:
                raise EdgewriteError(f"{path}:{lineno}: missing '{key}'")
        if not isinstance(row["source"], str):
            raise EdgewriteError(f"{path}:{lineno}: 'source' must be a string (got {type(row['source']).__name__})")
        refs = row["references"]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise EdgewriteError(f"{path}:{lineno}: 'references' must be a list of strings")
        if not isinstance(row["task"], str) or row["task"] not in (*TASKS, GENERAL):
            raise EdgewriteError(
                f"{path}:{lineno}: unknown task '{row['task']}' (tasks: {', '.join(TASKS)}, {GENERAL}; "
                "or declare it in the recipe's data.custom_tasks)"
            )
        row.setdefault("id", f"{path.parent.name}-{path.stem}-{lineno}")
        rows.append(row)
    return rows


def _load_hub(spec: DataSource) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a core dependency
        raise EdgewriteError("hub data sets need the 'datasets' package: pip install datasets") from e
    try:
        ds = datasets.load_dataset(spec.hub, split=spec.hub_split)
    except Exception as e:  # noqa: BLE001 - datasets raises connection, file and value errors alike
        raise EdgewriteError(
            f"could not load hub data set '{spec.hub}' ({type(e).__name__}); it needs internet or a local "
            "hub cache. Offline, point data.data_dir at JSONL files instead"
        ) from e
    rows = []
    columns = set(ds.column_names)
    for i, rec in enumerate(ds):
        if {"src", "tgt", "task"} <= columns:  # CoEdIT: src is "Instruction: text"
            task = _COEDIT_TASKS.get(rec["task"])
            if task is None:
                continue
            instruction, _, text = rec["src"].partition(": ")
            rows.append(
                {
                    "task": task,
                    "source": text,
                    "references": [rec["tgt"]],
                    "instruction": instruction,
                    "id": f"{spec.hub}-{i}",
                }
            )
        elif {"source", "references", "task"} <= columns:
            rows.append({**rec, "id": rec.get("id") or f"{spec.hub}-{i}"})
        else:
            raise EdgewriteError(
                f"hub data set '{spec.hub}' has columns {sorted(columns)}; expected CoEdIT's (src, tgt, task) "
                "or edgewrite's (task, source, references)"
            )
    return rows


def read_sts_csv(path: Path, name: str, min_score: float) -> list[dict[str, Any]]:
    """Paraphrase rows from an STS benchmark CSV as published (``sentence1,sentence2,score``, no header, as in
    stsb-multi-mt's ``stsb-en-train.csv``): pairs scored ``min_score`` or above, sentence1 -> sentence2. Ids
    are ``<dataset>-<split>-<row index>``, those of the normalized ``stsb/*.jsonl`` for the same rows."""
    import csv

    split = path.stem.rsplit("-", 1)[-1]
    rows = []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            for i, fields in enumerate(csv.reader(f)):
                try:
                    s1, s2, score = fields[0], fields[1], float(fields[2])
                except (IndexError, ValueError):
                    raise EdgewriteError(
                        f"{path}:{i + 1}: not an STS row (sentence1,sentence2,score); give the CSV as published"
                    ) from None
                if score >= min_score and s1.strip() and s2.strip():
                    rows.append({"task": "paraphrase", "source": s1, "references": [s2], "id": f"{name}-{split}-{i}"})
    except UnicodeDecodeError as e:
        raise EdgewriteError(f"{path}: not UTF-8 text ({e.reason})") from None
    return rows


def _id_score(row_id: str) -> float | None:
    """The similarity score an id carries (``...-s4.25``, as in sts_extra), if any."""
    m = re.search(r"-s(\d+(?:\.\d+)?)$", row_id)
    return float(m.group(1)) if m else None


def _sample(rows: list[dict], n: int) -> list[dict]:
    """A fixed sample of ``n`` rows: those whose id hashes lowest (the same rows whatever the seed or order)."""
    return sorted(rows, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:n]


def load_source(spec: DataSource, data_dir: Path) -> list[dict[str, Any]]:
    if spec.hub:
        rows = _load_hub(spec)
        name = spec.hub.split("/")[-1]
    else:
        path = data_dir / spec.path
        if not path.is_file():
            raise EdgewriteError(f"data file {path} does not exist (data_dir is {data_dir})")
        parts = Path(spec.path).parts  # the data set's folder under data_dir (stsb/raw/data/x.csv: stsb)
        name = parts[0] if len(parts) > 1 else Path(spec.path).stem
        if path.suffix == ".csv":
            rows = read_sts_csv(path, name, 5.0 if spec.min_score is None else spec.min_score)
        else:
            rows = read_jsonl(path)
    if spec.task:
        rows = [r for r in rows if r["task"] == spec.task]
    if spec.min_score is not None:
        rows = [r for r in rows if _id_score(r["id"]) is None or _id_score(r["id"]) >= spec.min_score]
    for r in rows:
        r["dataset"] = name
    return rows


def _clean(row: dict[str, Any], max_chars: int) -> dict[str, Any] | None:
    refs = [r for r in row["references"] if r.strip()]
    source = row["source"]
    if not refs or len(source) > max_chars or len(refs[0]) > max_chars:
        return None
    if row["task"] == GENERAL:
        instruction = row.get("instruction") or source
        text = row.get("input", "")
    else:
        instruction = row.get("instruction") or pick_instruction(row["task"], row["id"])
        text = source
    return {
        "id": row["id"],
        "task": row["task"],
        "dataset": row["dataset"],
        "instruction": instruction,
        "source": text,
        "references": refs,
    }


def split_rows(config: DataConfig, data_dir: Path) -> tuple[list[dict], list[dict], dict[str, int]]:
    """All usable rows, split leak-free into train and dev (before caps)."""
    if not data_dir.is_dir():
        raise EdgewriteError(
            f"data directory {data_dir} does not exist; set EDGEWRITE_DATA to a folder in the layout of "
            "shared/data, put one at ../shared/data, or set the recipe's data.data_dir"
        )
    wanted = set(config.tasks) | ({GENERAL} if config.general else set())
    train, dev = [], []
    dropped: Counter[str] = Counter()
    for spec in config.sources:
        from_spec = []
        for raw in load_source(spec, data_dir):
            if raw["task"] not in wanted:
                continue
            row = _clean(raw, config.max_chars)
            if row is None:
                dropped[raw["task"]] += 1
                continue
            role = spec.role
            if role == "split":
                role = "dev" if in_dev_bucket(raw["source"], config.dev_fraction) else "train"
            if role == "dev" and row["task"] == GENERAL:
                continue
            (dev if role == "dev" else from_spec).append(row)
        train.extend(from_spec if spec.max_rows is None else _sample(from_spec, spec.max_rows))
    if not train and not dev:
        raise EdgewriteError(f"no rows for tasks {sorted(wanted)} under {data_dir}; check data.sources")
    # No dev source text may be trained on, whichever file it came from.
    dev_keys = {normalize_key(r["source"]) for r in dev}
    leaked = [r for r in train if normalize_key(r["source"]) in dev_keys]
    train = [r for r in train if normalize_key(r["source"]) not in dev_keys]
    dropped["(train rows whose source is also a dev source)"] += len(leaked)
    return train, dev, dict(dropped)


def _unchanged(row: dict) -> bool:
    return " ".join(row["source"].split()) == " ".join(row["references"][0].split())


def _cap(
    rows: list[dict], limit_for: dict[str, int | None], seed: int, max_unchanged: float | None = None
) -> list[dict]:
    """Per-task caps. With ``max_unchanged``, rows whose answer is the input itself make up at most
    that share of a task: a set that is mostly "nothing to fix" teaches a model to copy."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
    out = []
    for task in sorted(by_task):
        items = sorted(by_task[task], key=lambda r: r["id"])
        random.Random(f"{seed}-{task}").shuffle(items)
        if max_unchanged is not None and task != GENERAL:
            changed = [r for r in items if not _unchanged(r)]
            same = [r for r in items if _unchanged(r)]
            limit = limit_for.get(task)
            n_same = len(same) if limit is None else min(len(same), int(max_unchanged * limit))
            n_changed = len(changed) if limit is None else min(len(changed), limit - n_same)
            if max_unchanged < 1:  # unchanged rows <= share of the final set
                n_same = min(n_same, int(max_unchanged / (1 - max_unchanged) * n_changed))
            items = changed[:n_changed] + same[:n_same]
            random.Random(f"{seed}-{task}-mix").shuffle(items)
        limit = limit_for.get(task)
        out.extend(items if limit is None else items[:limit])
    random.Random(seed).shuffle(out)
    return out


_NOISE_SOURCE_TASKS = ("simplification", "paraphrase", "clarity", "coherence", GENERAL)


def _with_synthetic_errors(train: list[dict], config: DataConfig, seed: int) -> list[dict]:
    """Add (noisy -> clean) grammar and fluency rows made from the clean answers of other training rows
    (training rows only, so no dev text can leak through the noise)."""
    from edgewrite.noise import synthetic_pairs

    texts = [r["references"][0] for r in sorted(train, key=lambda r: r["id"]) if r["task"] in _NOISE_SOURCE_TASKS]
    targets = [t for t in ("grammar", "fluency") if t in config.tasks]
    pairs = synthetic_pairs(texts, config.synthetic_errors * len(targets), seed)
    rows = []
    for i, (noisy, clean, _rules) in enumerate(pairs):
        task = targets[i % len(targets)]
        row_id = f"synthetic-{task}-{i}"
        rows.append(
            {
                "id": row_id,
                "task": task,
                "dataset": "synthetic",
                "instruction": pick_instruction(task, row_id),
                "source": noisy,
                "references": [clean],
            }
        )
    out = train + rows
    random.Random(f"{seed}-synthetic").shuffle(out)
    return out


def data_fingerprint(config: DataConfig, data_dir: Path, seed: int) -> str:
    """What a data artifact is made from (without custom tasks, and without per-source settings left unset: as
    before recipes could declare them)."""
    dumped = config.model_dump(exclude=None if config.custom_tasks else {"custom_tasks"})
    for source in dumped["sources"]:  # settings added later count only when set: older builds keep their key
        for key in ("max_rows", "min_score"):
            if source.get(key) is None:
                source.pop(key, None)
    return fingerprint({"config": dumped, "data_dir": str(Path(data_dir).resolve()), "seed": seed})


def build_dataset(
    config: DataConfig, out: Path, seed: int = 42, force: bool = False, data_dir: Path | None = None
) -> dict[str, Any]:
    """Write ``out/train.jsonl`` and ``out/dev.jsonl``; skipped if ``out`` already holds this build."""
    data_dir = Path(data_dir or config.data_dir)
    fp = data_fingerprint(config, data_dir, seed)
    if existing_matches(out, fp, force):
        return json.loads((out / "manifest.json").read_text())
    train, dev, dropped = split_rows(config, data_dir)
    train_caps: dict[str, int | None] = {}
    for task in config.tasks:
        if config.train_per_task is None:
            train_caps[task] = None
        else:
            train_caps[task] = max(1, round(config.train_per_task * config.task_weights.get(task, 1.0)))
    train_caps[GENERAL] = config.general
    train = _cap(train, train_caps, seed, config.max_unchanged_fraction)
    if config.synthetic_errors:
        train = _with_synthetic_errors(train, config, seed)
    dev = _cap(dev, {t: config.dev_per_task for t in config.tasks}, seed)
    if not train:
        raise EdgewriteError("the data recipe leaves no training rows; raise the caps or add sources")
    counts: dict[str, dict[str, int]] = {}
    for split, rows in (("train", train), ("dev", dev)):
        for task, n in Counter(r["task"] for r in rows).items():
            counts.setdefault(task, {"train": 0, "dev": 0})[split] = n
    with staged_dir(out) as tmp:
        for split, rows in (("train", train), ("dev", dev)):
            with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        manifest = write_manifest(
            tmp,
            "data",
            fingerprint=fp,
            format="jsonl",
            data_dir=str(data_dir),
            seed=seed,
            prompt_style=config.prompt_style,
            counts=counts,
            dropped=dropped,
            sources=[s.model_dump(exclude_none=True) for s in config.sources],
            **({"custom_tasks": [t.model_dump() for t in config.custom_tasks]} if config.custom_tasks else {}),
        )
    return manifest
