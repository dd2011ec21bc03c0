"""``edgewrite bench``: quality, latency, throughput, memory and size for artifacts x devices.

Each cell (one artifact on one device) runs in its own process, so peak RSS is that artifact's alone,
and is stored as soon as it finishes; a re-run skips finished cells (resumable). The ``copy``
baseline (return the input unchanged) and the untuned base model are always in the table.

Quality is scored on every dev row no training run may see (``--limit N``: a seeded random sample of
N rows per set), with runtimes that batch (transformers, GPT-QModel) decoding 16 prompts at a time;
latency is measured one request at a time, on every row for runtimes that do not batch and on a
seeded sample of rows for those that do. After the cells, every pair of systems is compared by paired
bootstrap on the same rows (``bench.json`` ``comparisons``), which is what the report's verdict reads.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgewrite.artifacts import fingerprint, git_commit, read_manifest, tool_versions
from edgewrite.errors import EdgewriteError
from edgewrite.measure import percentile  # noqa: F401  (public here too: scripts time with it)

SCHEMA = "edgewrite.bench/2"
COPY = "copy"
BASE = "default"
QUALITY_BATCH = 16  # prompts per forward pass for runtimes that batch
LATENCY_ROWS = 140  # one-at-a-time requests timed for runtimes that batch their quality pass


def describe(path: Path, manifest: dict) -> dict[str, Any]:
    kind, fmt = manifest.get("kind"), manifest.get("format")
    if kind == "base":
        label, runtime = "base fp32 (untuned)", "hf"
    elif fmt == "safetensors":
        label, runtime = "tuned fp32", "hf"
    elif fmt == "gguf":
        d = manifest["details"]
        label, runtime = f"tuned gguf {d['type']}", "llamacpp"
        if d.get("imatrix"):
            label += " imatrix"
        if d.get("rounding") == "autoround":
            label += " AutoRound"
            # AutoRound's Q4_0 file holds a tied token embedding (the output, too) in Q8_0; more Q8_0 tensors are
            # layers --tensor-type lifted (a model with a separate output layer gets Q4_0/Q6_K there instead,
            # so this counts one lifted layer short for it)
            lifted = (d.get("tensor_types") or {}).get("Q8_0", 0) - 1
            if d["type"] == "Q4_0" and lifted > 0:
                label += f" + {lifted} Q8_0"
        if d.get("tensor_type_overrides"):
            label += f" ({', '.join(d['tensor_type_overrides'])})"
        if d.get("lora_file"):
            label += " + LoRA"
    elif fmt == "gptq":
        d = manifest["details"]
        label, runtime = f"tuned gptq {d['bits']}-bit g{d['group_size']}", "gptq"
    elif fmt == "onnx":
        label, runtime = f"tuned onnx {manifest['details']['precision']}", "onnx"
    else:
        raise EdgewriteError(f"{path}: bench cannot run a '{kind}' artifact of format '{fmt}'")
    size = sum(f["bytes"] for f in manifest.get("files", {}).values())
    return {
        "label": label,
        "runtime": runtime,
        "format": fmt,
        "kind": kind,
        "bits": manifest.get("bits"),
        "size_mb": round(size / 1e6, 1),
        "path": str(path),
        "parent": (manifest.get("parent") or {}).get("path"),
    }


def cell_id(label: str, device: str) -> str:
    """A plain file name for a cell: letters, digits, '-', '_' and '.' only."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label.replace(" ", "_"))
    return f"{safe.strip('_')}__{device}"


# --------------------------------------------------------------------------- the worker (one cell)
def latency_sample(sets: list, n: int, seed: int = 7) -> list:
    """A seeded sample of about n rows, spread evenly over the sets, as single-row sets."""
    from dataclasses import replace

    per_set = max(1, n // max(len(sets), 1))
    sample = []
    for s in sets:
        idx = sorted(random.Random(f"latency-{seed}-{s.key}").sample(range(len(s.rows)), min(per_set, len(s.rows))))
        sample.append(replace(s, rows=[s.rows[i] for i in idx], m2=[s.m2[i] for i in idx] if s.m2 else []))
    return sample


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Inside the worker process: load, warm up, generate for every row, time single requests."""
    from edgewrite.edit import load_editor
    from edgewrite.evaluate import gather, run_eval, score_outputs
    from edgewrite.tasks import register_from_manifest

    register_from_manifest(spec)  # the bench's custom tasks: every system is scored on the same rows
    t0 = time.perf_counter()
    editor, _ = load_editor(
        spec["path"],
        device=spec["device"],
        threads=spec["threads"],
        batch_size=spec["batch_size"],
        pre=spec["pre"],
        policy=spec.get("policy"),
    )
    load_s = time.perf_counter() - t0
    sets = gather(
        Path(spec["data_dir"]),
        spec["tasks"],
        spec["split"],
        spec["limit"],
        set(spec["exclude"]),
        spec["dev_fraction"],
        headline_only=spec.get("headline_only", False),
    )
    editor.edit(sets[0].spec.task, [sets[0].rows[0]["source"]])  # warm-up: first-call allocations are not latency
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        print(f"PROGRESS {done}", flush=True)

    batch = spec["batch_size"] if editor.batches else 1
    t1 = time.perf_counter()
    outputs, records, timings = run_eval(editor, sets, progress=progress, batch_size=batch)
    quality_s = time.perf_counter() - t1
    if batch > 1:  # time single requests on a sample: latency is what one user waits for
        _, _, timings = run_eval(editor, latency_sample(sets, spec["latency_rows"]), progress=progress)
    quality = score_outputs(sets, outputs)
    peak_gpu = None
    if spec["device"] == "cuda":
        import torch

        peak_gpu = round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None
    return {
        "load_s": round(load_s, 3),
        "rows": len(records),
        "quality_batch_size": batch,
        "quality_pass_s": round(quality_s, 1),
        **_timing_summary(timings),
        "stopped_fraction": round(sum(r["finish"] == "stop" for r in records) / len(records), 4),
        "unchanged_fraction": round(
            sum(" ".join(r["output"].split()) == " ".join(r["source"].split()) for r in records) / len(records), 4
        ),
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu,
        "quality": quality,
        "_records": records,
    }


def peak_rss_mb() -> float:
    """This process's own peak resident memory. VmHWM belongs to the address space exec made; getrusage's
    ru_maxrss would also count the parent's high-water mark at fork (a big parent, a falsely big child)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timing_summary(timings: list[dict]) -> dict[str, Any]:
    decoded = [t for t in timings if t["new_tokens"] > 1]
    decode_tps = (sum(t["new_tokens"] - 1 for t in decoded) / sum(t["decode_s"] for t in decoded)) if decoded else None
    ttft = [t["ttft_s"] * 1000 for t in timings]
    latency = [t["wall_s"] * 1000 for t in timings]
    return {
        "latency_rows": len(timings),
        "ttft_ms": {"p50": _round(percentile(ttft, 0.5)), "p95": _round(percentile(ttft, 0.95))},
        "edit_latency_ms": {"p50": _round(percentile(latency, 0.5)), "p95": _round(percentile(latency, 0.95))},
        "decode_tok_s": _round(decode_tps),
        "mean_new_tokens": _round(statistics.mean(t["new_tokens"] for t in timings)),
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the parent (all cells)
def describe_system(name: str) -> dict[str, Any]:
    """A system that is not a model (Harper): its label and the size of what it installs."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    root = Path(spec.origin).parent if spec and spec.origin else None
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root else 0
    return {
        "label": f"{name} (rule-based)",
        "runtime": name,
        "format": None,
        "kind": "system",
        "bits": None,
        "size_mb": round(size / 1e6, 1),
        "path": name,
        "parent": None,
        "fingerprint": f"system-{name}",
    }


def _entries(
    artifacts: list[str], base: str, systems: tuple[str, ...], pre: str | None, pre_on: list[str] | None = None
) -> tuple[list[dict], set[str], float]:
    """What to bench (the base model first, then the artifacts, their pre-pass variants and the systems)
    and the training sources none of them may be scored on."""
    from edgewrite.evaluate import training_keys
    from edgewrite.shipped import artifact_path

    base_path = artifact_path(base)  # a model name ('default', 'gemma3-270m'), a .gguf file or a model folder
    # the untuned base model is always benched: listing it too (by name or path) benches it once
    is_base = [a == base or (Path(a).exists() and Path(a).resolve() == base_path.resolve()) for a in artifacts]
    paths = [base_path] + [Path(a) for a, b in zip(artifacts, is_base, strict=True) if not b and a not in systems]
    entries, exclude, dev_fraction = [], set(), 0.1
    for p in paths:
        manifest = read_manifest(p)
        if manifest.get("kind") in ("adapter", "data"):
            raise EdgewriteError(f"{p} is a '{manifest['kind']}' artifact; bench takes models (merge it first)")
        keys, frac = training_keys(manifest)
        exclude |= keys
        dev_fraction = frac if keys else dev_fraction
        entries.append({**describe(p, manifest), "fingerprint": manifest.get("fingerprint"), "pre": None})
    _disambiguate(entries)
    entries[0]["listed"] = any(is_base)
    if pre_on is not None:
        listed = {Path(a).resolve() for a in artifacts}
        for a in pre_on:
            if Path(a).resolve() not in listed:
                raise EdgewriteError(f"--pre-on {a} is not one of the benched artifacts; list it as an argument too")
    if pre:
        chosen = None if pre_on is None else {Path(a).resolve() for a in pre_on}
        entries += [
            {**e, "label": f"{e['label']} + {pre} pre-pass", "pre": pre, "fingerprint": f"{e['fingerprint']}+{pre}"}
            for e, p in zip(entries[1:], paths[1:], strict=True)
            if chosen is None or p.resolve() in chosen
        ]
    entries += [{**describe_system(name), "pre": None} for name in systems]
    return entries, exclude, dev_fraction


def _disambiguate(entries: list[dict]) -> None:
    """Two artifacts of the same kind from different runs (the quickstart model beside the CPU recipe's):
    the first keeps its plain label, a later one gets its run's folder name, e.g. 'tuned fp32 (quickstart)'
    (and its own folder's name too where that is not enough)."""
    seen: set[str] = set()
    paths: set[Path] = set()
    for e in entries:
        if Path(e["path"]).resolve() in paths:
            raise EdgewriteError(f"{e['path']} is listed twice; list each artifact once")
        paths.add(Path(e["path"]).resolve())
        if e["label"] in seen:
            path = Path(e["path"])
            plain = e["label"]
            e["label"] = f"{plain} ({path.parent.name})"
            if e["label"] in seen:  # two of one kind in one run folder: name the folder too
                e["label"] = f"{plain} ({path.parent.name}/{path.name})"
        seen.add(e["label"])


def _conditions(
    threads: int | None, split: str, limit: int | None, tasks: Any, data_dir: Path, sets: list, exclude: set
) -> dict:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads or os.cpu_count(),
        "platform": platform.platform(),
        "versions": tool_versions(),
        "commit": git_commit(),
        "split": split,
        "limit_per_set": limit,
        "tasks": tasks or "all",
        "data_dir": str(data_dir),
        "rows": sum(len(s.rows) for s in sets),
        "rows_per_set": {s.key: len(s.rows) for s in sets},
        "excluded_training_sources": len(exclude),
        "quality_batch_size": QUALITY_BATCH,
    }


def _copy_cell(sets: list) -> dict[str, Any]:
    from edgewrite.evaluate import score_outputs

    outputs = {s.key: [r["source"] for r in s.rows] for s in sets}
    return {
        "id": COPY,
        "artifact": COPY,
        "label": "copy (input unchanged)",
        "device": "-",
        "runtime": None,
        "format": None,
        "size_mb": 0.0,
        "quality": score_outputs(sets, outputs),
    }


def _run_or_reuse(entry: dict, device: str, spec: dict, sets: list, out: Path, rescore: bool, progress: Any) -> dict:
    name = cell_id(entry["label"], device)
    # The exclusions are the training sources of every artifact benched beside this one; what they change
    # is which rows are scored, so the rows (not the exclusions) key the cell: benching a new model next to
    # earlier ones reuses their cells unless its training data removes a row they were scored on.
    scored = fingerprint([[s.key, [r["id"] for r in s.rows]] for s in sets])
    spec_fp = fingerprint(
        {**{k: v for k, v in spec.items() if k != "exclude"}, "rows": scored, "artifact": entry["fingerprint"]}
    )
    cell_path = out / "cells" / f"{name}.json"
    rows_file = rows_path(out, name)
    if cell_path.is_file() and rows_file.is_file():
        cell = _read_json(cell_path)
        if cell.get("spec_fingerprint") == spec_fp:
            if rescore:
                cell["quality"] = _rescore(sets, rows_file)
                _write_json(cell_path, cell)
            progress.log(f"{entry['label']} [{device}]: kept from an earlier run")
            return cell
    total = sum(len(s.rows) for s in sets)
    progress.log(f"{entry['label']} [{device}]: {total} rows")
    t0 = time.perf_counter()
    result = _spawn(spec, lambda n: progress.update(completed=progress.base + n))
    records = result.pop("_records")
    write_rows(rows_path(out, name), records)
    cell = {
        "id": name,
        "artifact": entry["path"],
        **{k: v for k, v in entry.items() if k != "fingerprint"},
        "device": device,
        "spec_fingerprint": spec_fp,
        "wall_s": round(time.perf_counter() - t0, 1),
        **result,
    }
    _write_json(cell_path, cell)
    return cell


def rows_path(out: Path, cell: str) -> Path:
    """A cell's per-row outputs: ``rows/ID.jsonl.gz`` (an older bench's plain ``rows/ID.jsonl`` is read
    where no compressed file exists)."""
    gz = out / "rows" / f"{cell}.jsonl.gz"
    plain = out / "rows" / f"{cell}.jsonl"
    return plain if plain.is_file() and not gz.is_file() else gz


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The records of a rows file (``.jsonl.gz`` or ``.jsonl``)."""
    import gzip

    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewriteError(
            f"{path} is unreadable ({e}); delete it and its cell file and re-run edgewrite bench"
        ) from e


def write_rows(path: Path, records: list[dict[str, Any]]) -> None:
    """Rows written compressed (they feed the paired comparisons; a bench's rows are 95 % of its bytes)
    under a temporary name, then renamed; a legacy plain file of the same cell is removed."""
    import gzip

    gz = path if path.suffix == ".gz" else path.with_name(path.name + ".gz")
    tmp = gz.with_name(gz.name + ".tmp")
    with gzip.GzipFile(tmp, "wb", compresslevel=9, mtime=0) as raw:
        raw.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))
    os.replace(tmp, gz)
    legacy = gz.with_name(gz.name.removesuffix(".gz"))
    if legacy.is_file():
        legacy.unlink()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewriteError(f"{path} is not valid JSON; delete it and re-run edgewrite bench") from e


def bench(
    artifacts: list[str],
    out: Path,
    devices: list[str],
    threads: int | None,
    tasks: list[str] | None,
    limit: int | None,
    split: str,
    data_dir: Path,
    quiet: bool = False,
    command: str | None = None,
    base: str = BASE,
    rescore: bool = False,
    latency_rows: int = LATENCY_ROWS,
    pre: str | None = None,
    systems: tuple[str, ...] = ("harper",),
    headline_only: bool = False,
    pre_on: list[str] | None = None,
    train_data: list[Path] | None = None,
    policy: bool = False,
    agreement: int = 0,
    policy_on: list[str] | None = None,
) -> dict[str, Any]:
    """``train_data``: `edgewrite data` folders whose training rows are excluded too, for models whose
    manifest does not say where their data is (the shipped adapter carries only its data's fingerprint).
    ``agreement``: rows per task on which each quantized artifact is teacher-forced on its fp32 parent's
    answers (`measure.agreement`); 0 skips it."""
    from edgewrite.evaluate import gather, training_keys
    from edgewrite.progress import Progress

    for d in devices:
        if d not in ("cpu", "cuda"):
            raise EdgewriteError(f"--device {d}: use cpu, cuda or cpu,cuda")
    if agreement < 0:
        raise EdgewriteError(f"--agreement {agreement}: give rows per task (0 skips the measurement)")
    if "cuda" in devices:
        import torch

        if not torch.cuda.is_available():
            raise EdgewriteError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    from edgewrite.edit import check_pre
    from edgewrite.tasks import CUSTOM, register_from

    check_pre(pre)
    for artifact in artifacts:  # a model tuned on custom tasks is scored on them too
        register_from(artifact)
    if pre_on and not pre:
        raise EdgewriteError("--pre-on needs --pre (the pre-pass to put in front of those artifacts)")
    if policy_on and not policy:
        raise EdgewriteError("--policy-on needs --policy (the artifacts to bench under their policy)")
    entries, exclude, dev_fraction = _entries(artifacts, base, systems, pre, pre_on)
    if policy:  # each listed model (or those of --policy-on) under its per-task policy, beside the plain model
        from edgewrite.edit.policy import policy_for

        chosen = None
        if policy_on is not None:
            chosen = {Path(a).resolve() for a in policy_on}
            for a in policy_on:
                if Path(a).resolve() not in {Path(x).resolve() for x in artifacts}:
                    raise EdgewriteError(
                        f"--policy-on {a} is not one of the benched artifacts; list it as an argument too"
                    )
        listed = [
            e
            for e in entries[1:]
            if e["pre"] is None
            and e.get("kind") != "system"
            and (chosen is None or Path(e["path"]).resolve() in chosen)
        ]
        keys = {}
        for e in listed:
            found = policy_for(Path(e["path"]), None, lambda line: None)
            if found is None:
                raise EdgewriteError(f"--policy: {e['path']} has no policy.json beside the adapter it was made from")
            # the policy's content keys the cell: a policy chosen again is benched again
            keys[e["path"]] = fingerprint(json.loads(Path(found.source).read_text(encoding="utf-8"))["tasks"])
        at = entries.index(listed[-1]) + 1 if listed else len(entries)
        entries[at:at] = [
            {
                **e,
                "label": f"{e['label']} + policy",
                "policy": "auto",
                "fingerprint": f"{e['fingerprint']}+policy-{keys[e['path']]}",
            }
            for e in listed
        ]
    for folder in train_data or []:
        keys, dev_fraction = training_keys({"data": {"path": str(folder)}})
        if not keys:
            raise EdgewriteError(f"--train-data {folder} has no train.jsonl; give a folder written by `edgewrite data`")
        exclude |= keys
    _prepare_out(out)  # after the artifacts are read: a wrong path leaves no empty --out folder behind
    # Every artifact is scored on the same rows: none that any of them was trained on.
    sets = gather(data_dir, tasks, split, limit, exclude, dev_fraction, headline_only=headline_only)
    cells = [_copy_cell(sets)]
    n_rows = sum(len(s.rows) for s in sets)
    with Progress("bench", n_rows * len(entries) * len(devices), quiet=quiet) as progress:
        progress.base = 0
        if entries[0].pop("listed", False):
            progress.log(f"{entries[0]['path']} is the untuned base model, which bench always includes: benched once")
        for entry in entries:
            for device in devices:
                spec = {
                    "path": entry["path"],
                    "device": device,
                    "threads": threads,
                    "tasks": tasks,
                    "limit": limit,
                    "split": split,
                    "data_dir": str(data_dir),
                    "exclude": sorted(exclude),
                    "dev_fraction": dev_fraction,
                    "batch_size": QUALITY_BATCH,
                    "latency_rows": latency_rows,
                    "pre": entry["pre"],
                    "headline_only": headline_only,
                    **({"policy": entry["policy"]} if entry.get("policy") else {}),
                    **({"custom_tasks": list(CUSTOM.values())} if CUSTOM else {}),
                }
                cells.append(_run_or_reuse(entry, device, spec, sets, out, rescore, progress))
                progress.base += n_rows
                progress.update(completed=progress.base)
        bandwidth = None
        if "cpu" in devices:
            from edgewrite.measure import memory_bandwidth

            bandwidth = memory_bandwidth(threads or os.cpu_count() or 1)
            _bound_shares(cells, bandwidth)
        if agreement:
            _agreements(cells, out, agreement, threads, progress)
        progress.log("comparing every pair of systems (paired bootstrap, 1000 resamples)")
        comparisons = compare_cells(sets, cells, out)
    doc = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        **_rescore_note(out / "bench.json", command, rescore),
        "conditions": {
            **_conditions(threads, split, limit, tasks, data_dir, sets, exclude),
            "headline_only": headline_only,
            "memory_bandwidth_gbs": bandwidth,
        },
        "cells": cells,
        "comparisons": comparisons,
        "training": training_curves(entries),
    }
    _write_json(out / "bench.json", doc)
    return doc


def fp32_parent(cells: list[dict], cell: dict) -> dict | None:
    """A quantized cell's own fp32 parent among the bench's merged models (a bench may hold several runs');
    an export that keeps the LoRA adapter apart has the adapter as its parent, like the merge made from it."""
    if cell.get("kind") == "merged" or not cell.get("parent"):
        return None
    return next(
        (
            c
            for c in cells
            if c.get("kind") == "merged"
            and c.get("device") == cell.get("device", c.get("device"))
            and (c.get("path") == cell["parent"] or (" + LoRA" in cell["label"] and c.get("parent") == cell["parent"]))
        ),
        None,
    )


def _bound_shares(cells: list[dict], bandwidth: float) -> None:
    """Each CPU model cell's decode speed as a share of the memory-bandwidth bound of its weights."""
    from edgewrite.measure import bound_share, weight_bytes

    for c in cells:
        path = Path(str(c.get("path") or ""))
        if c.get("device") != "cpu" or not c.get("decode_tok_s") or not (path / "manifest.json").is_file():
            continue
        c["decode_bound_share"] = bound_share(c["decode_tok_s"], weight_bytes(path, read_manifest(path)), bandwidth)


def _agreements(cells: list[dict], out: Path, per_task: int, threads: int | None, progress: Any) -> None:
    """Teacher-forced agreement of each quantized cell with its fp32 parent's stored answers, kept in the
    cell file (and reused while the two cells and the sample size stay the same)."""
    from edgewrite.measure import agreement, parent_rows
    from edgewrite.runtimes import load_runtime
    from edgewrite.tasks import style_of

    for c in cells:
        parent = fp32_parent(cells, c)
        if parent is None or c.get("pre") or c.get("policy") or c.get("device") != "cpu":
            continue
        key = fingerprint([c["spec_fingerprint"], parent["spec_fingerprint"], per_task])
        if (c.get("agreement") or {}).get("key") == key:
            continue
        rows = parent_rows(read_rows(rows_path(out, parent["id"])), per_task)
        progress.log(f"{c['label']}: teacher-forced on {parent['label']}'s answers ({len(rows)} rows)")
        runtime, manifest = load_runtime(Path(c["path"]), threads=threads, batch_size=1)
        try:
            found = agreement(runtime, rows, manifest["stop_token"], style_of(manifest, runtime.tokenizer))
            c["agreement"] = {**found, "parent": parent["label"], "key": key}
        except EdgewriteError as e:
            progress.log(f"{c['label']}: no agreement ({e})")
            c["agreement"] = None
        finally:
            if hasattr(runtime, "close"):
                runtime.close()
        _write_json(out / "cells" / f"{c['id']}.json", c)


def _prepare_out(out: Path) -> None:
    """The output folder, checked before any work: it must be a writable folder (or creatable)."""
    if out.exists() and not out.is_dir():
        raise EdgewriteError(f"--out {out} is a file; give a folder")
    try:
        (out / "cells").mkdir(parents=True, exist_ok=True)
        (out / "rows").mkdir(exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise EdgewriteError(f"cannot write into --out {out} ({e.strerror}); choose a writable folder") from e


def _outputs_of(cell: dict, sets: list, out: Path) -> dict[str, list[str]]:
    if cell["artifact"] == COPY:
        return {s.key: [r["source"] for r in s.rows] for s in sets}
    stored = {(r["set"], r["id"]): r["output"] for r in read_rows(rows_path(out, cell["id"]))}
    return {s.key: [stored[(s.key, row["id"])] for row in s.rows] for s in sets}


def compare_cells(sets: list, cells: list[dict], out: Path) -> list[dict[str, Any]]:
    """Every pair of systems on the same device (and every system against copy): the paired difference
    of each task's headline score and of their mean, with 95 % intervals, and the share of rows on which
    their outputs differ (how much of a quantized model's score change is greedy near-ties flipping)."""
    from edgewrite.evaluate import headline_scorers
    from edgewrite.measure import compare_outputs

    outputs = {c["id"]: _outputs_of(c, sets, out) for c in cells}
    scorers = {cid: headline_scorers(sets, o) for cid, o in outputs.items()}
    result = []
    for i, a in enumerate(cells):
        for b in cells[:i]:
            if b["artifact"] != COPY and a["device"] != b["device"]:
                continue
            both = compare_outputs(sets, outputs[a["id"]], outputs[b["id"]], (scorers[a["id"]], scorers[b["id"]]))
            result.append(
                {
                    "a": a["id"],
                    "b": b["id"],
                    "tasks": {t: v for t, v in both["delta"].items() if t != "mean"},
                    "mean": both["delta"]["mean"],
                    "differ": both["differ"],
                }
            )
    return result


def training_curves(entries: list[dict]) -> dict[str, Any]:
    """Train loss and dev scores per step of each tuned lineage (merged -> adapter's train_log.json)."""
    curves = {}
    for e in entries:
        path = Path(e["path"])
        for _ in range(3):  # quantized -> merged -> adapter
            log = path / "train_log.json"
            if log.is_file():
                data = json.loads(log.read_text())
                curves[e["label"]] = {
                    "train": [
                        {"step": h["step"], "loss": h["loss"]} for h in data.get("log_history", []) if "loss" in h
                    ],
                    "dev": [
                        {"step": h["step"], "mean": h["mean"], "dev_loss": h.get("dev_loss")}
                        for h in ((data.get("selection") or {}).get("history") or [])
                    ],
                    "best_step": (data.get("selection") or {}).get("best_step"),
                    "source": str(log),
                }
                break
            manifest = path / "manifest.json"
            parent = json.loads(manifest.read_text()).get("parent", {}).get("path") if manifest.is_file() else None
            if not parent:
                break
            path = Path(parent)
    # one curve per lineage: every artifact made from the same adapter shares it
    unique: dict[str, Any] = {}
    for label, curve in curves.items():
        if not any(c["source"] == curve["source"] for c in unique.values()):
            unique[label] = curve
    return unique


def _rescore_note(previous: Path, command: str | None, rescore: bool) -> dict[str, Any]:
    """On --rescore, keep the command that generated the outputs and record the re-scoring one."""
    if not rescore or not previous.is_file():
        return {}
    first = _read_json(previous).get("command")
    return {
        "command": first or command,
        "rescored_by": command,
        "rescored": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _rescore(sets: list, rows_path: Path) -> dict[str, Any]:
    """Quality of a finished cell from its stored raw outputs, with today's post-processing and metrics
    (no generation: a metric or cleaning fix applies to every cell alike). The rows file is rewritten
    with the re-cleaned outputs, so comparisons read the same outputs."""
    from edgewrite.edit import clean_output
    from edgewrite.evaluate import score_outputs

    stored = {(r["set"], r["id"]): r for r in read_rows(rows_path)}
    outputs = {}
    for s in sets:
        try:
            outputs[s.key] = [clean_output(stored[(s.key, row["id"])]["raw_output"], row["source"]) for row in s.rows]
        except KeyError as e:
            raise EdgewriteError(f"{rows_path} lacks row {e}; re-run this cell (delete its cell file)") from e
        for row, text in zip(s.rows, outputs[s.key], strict=True):
            stored[(s.key, row["id"])]["output"] = text
    write_rows(rows_path, list(stored.values()))
    return score_outputs(sets, outputs)


def _spawn(spec: dict[str, Any], on_progress: Any) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryFile("w+") as errfile, tempfile.NamedTemporaryFile("w", suffix=".json") as spec_file:
        # The spec goes through a file: its list of excluded training sources is too long for argv.
        json.dump(spec, spec_file)
        spec_file.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgewrite.bench", spec_file.name],
            stdout=subprocess.PIPE,
            stderr=errfile,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        result = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("PROGRESS "):
                on_progress(int(line.split()[1]))
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
        proc.wait()
        errfile.seek(0)
        err = errfile.read()
    if proc.returncode != 0 or result is None:
        last = [line for line in err.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise EdgewriteError(f"bench of {spec['path']} on {spec['device']} failed: {last[0]}")
    return result


def _worker() -> None:
    from edgewrite import quiet_third_party_logs

    quiet_third_party_logs()
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        result = run_cell(spec)
    except EdgewriteError as e:
        print(str(e), file=sys.stderr)
        sys.exit(2)
    print("RESULT " + json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    _worker()
