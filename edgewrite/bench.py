"""``edgewrite bench``: quality, latency, throughput, memory and size for artifacts x devices.

Each cell (one artifact on one device) runs in its own process, so peak RSS is that artifact's
alone, and is stored as soon as it finishes; a re-run skips finished cells (resumable). The
``copy`` baseline (return the input unchanged) and the untuned base model are always in the table.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgewrite.artifacts import fingerprint, git_commit, read_manifest, tool_versions
from edgewrite.errors import EdgewriteError

SCHEMA = "edgewrite.bench/1"
COPY = "copy"
BASE = "default"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def describe(path: Path, manifest: dict) -> dict[str, Any]:
    kind, fmt = manifest.get("kind"), manifest.get("format")
    if kind == "base":
        label, runtime = "base fp32 (untuned)", "hf"
    elif fmt == "safetensors":
        label, runtime = "tuned fp32", "hf"
    elif fmt == "gguf":
        label, runtime = f"tuned gguf {manifest['details']['type']}", "llamacpp"
    elif fmt == "gptq":
        d = manifest["details"]
        label, runtime = f"tuned gptq {d['bits']}-bit g{d['group_size']}", "gptq"
    else:
        label, runtime = f"tuned onnx {manifest['details']['precision']}", "onnx"
    size = sum(f["bytes"] for f in manifest.get("files", {}).values())
    return {
        "label": label,
        "runtime": runtime,
        "format": fmt,
        "kind": kind,
        "bits": manifest.get("bits"),
        "size_mb": round(size / 1e6, 1),
        "path": str(path),
    }


def _cell_name(label: str, device: str) -> str:
    return f"{label.replace(' ', '_').replace('/', '-')}__{device}"


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Inside the worker process: load, warm up, evaluate row by row, measure."""
    import resource

    from edgewrite.evaluate import gather, run_eval, score_outputs
    from edgewrite.runtimes import load_runtime

    t0 = time.perf_counter()
    runtime, manifest = load_runtime(Path(spec["path"]), device=spec["device"], threads=spec["threads"], batch_size=1)
    load_s = time.perf_counter() - t0
    style = manifest.get("prompt_style", "chat")
    sets = gather(
        Path(spec["data_dir"]), spec["tasks"], spec["split"], spec["limit"], set(spec["exclude"]), spec["dev_fraction"]
    )
    warm = sets[0].rows[0]["source"]
    from edgewrite.tasks import build_prompt

    runtime.generate([build_prompt(runtime.tokenizer, "Fix grammar", warm, style)], max_new_tokens=16)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        print(f"PROGRESS {done}", flush=True)

    outputs, records, timings = run_eval(runtime, style, sets, progress=progress, batch_size=1)
    quality = score_outputs(sets, outputs)
    peak_gpu = None
    if spec["device"] == "cuda":
        import torch

        peak_gpu = round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None
    decoded = [t for t in timings if t["new_tokens"] > 1]
    decode_tps = (sum(t["new_tokens"] - 1 for t in decoded) / sum(t["decode_s"] for t in decoded)) if decoded else None
    ttft = [t["ttft_s"] * 1000 for t in timings]
    latency = [t["wall_s"] * 1000 for t in timings]
    return {
        "load_s": round(load_s, 3),
        "rows": len(records),
        "ttft_ms": {"p50": _round(_pct(ttft, 0.5)), "p95": _round(_pct(ttft, 0.95))},
        "edit_latency_ms": {"p50": _round(_pct(latency, 0.5)), "p95": _round(_pct(latency, 0.95))},
        "decode_tok_s": _round(decode_tps),
        "mean_new_tokens": _round(statistics.mean(t["new_tokens"] for t in timings)),
        "stopped_fraction": round(sum(r["finish"] == "stop" for r in records) / len(records), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_gpu_mb": peak_gpu,
        "quality": quality,
        "_records": records,
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _cpu_name() -> str:
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
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgewrite.evaluate import gather, score_outputs, training_keys
    from edgewrite.models import resolve_model

    for d in devices:
        if d not in ("cpu", "cuda"):
            raise EdgewriteError(f"--device {d}: use cpu, cuda or cpu,cuda")
    if "cuda" in devices:
        import torch

        if not torch.cuda.is_available():
            raise EdgewriteError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    base_path = resolve_model(base).path if base == BASE else Path(base)
    paths = [base_path] + [Path(a) for a in artifacts if a not in (BASE, base)]
    entries = []
    exclude: set[str] = set()
    dev_fraction = 0.1
    for p in paths:
        manifest = read_manifest(p)
        if manifest.get("kind") in ("adapter", "data"):
            raise EdgewriteError(f"{p} is a '{manifest['kind']}' artifact; bench takes models (merge it first)")
        keys, frac = training_keys(manifest)
        exclude |= keys
        dev_fraction = frac if keys else dev_fraction
        entries.append(describe(p, manifest))
    # Every artifact is scored on the same rows: none that any of them was trained on.
    sets = gather(data_dir, tasks, split, limit, exclude, dev_fraction)
    n_rows = sum(len(s.rows) for s in sets)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cells").mkdir(exist_ok=True)
    (out / "rows").mkdir(exist_ok=True)
    conditions = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads or os.cpu_count(),
        "platform": platform.platform(),
        "versions": tool_versions(),
        "commit": git_commit(),
        "split": split,
        "limit_per_set": limit,
        "tasks": tasks or "all",
        "data_dir": str(data_dir),
        "rows": n_rows,
        "excluded_training_sources": len(exclude),
    }
    copy_outputs = {f"{s.spec.task}/{s.spec.name}": [r["source"] for r in s.rows] for s in sets}
    cells = [
        {
            "artifact": COPY,
            "label": "copy (input unchanged)",
            "device": "-",
            "runtime": None,
            "format": None,
            "size_mb": 0.0,
            "quality": score_outputs(sets, copy_outputs),
        }
    ]
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=quiet
    ) as progress:
        for entry in entries:
            for device in devices:
                name = _cell_name(entry["label"], device)
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
                }
                spec_fp = fingerprint(
                    {
                        **spec,
                        "exclude": fingerprint(spec["exclude"]),
                        "artifact": read_manifest(Path(entry["path"])).get("fingerprint"),
                    }
                )
                cell_path = out / "cells" / f"{name}.json"
                if cell_path.is_file() and json.loads(cell_path.read_text()).get("spec_fingerprint") == spec_fp:
                    cell = json.loads(cell_path.read_text())
                    if rescore:
                        cell["quality"] = _rescore(sets, out / "rows" / f"{name}.jsonl")
                        _write_json(cell_path, cell)
                    cells.append(cell)
                    continue
                bar = progress.add_task(f"{entry['label']} [{device}]", total=n_rows)
                result = _spawn(spec, lambda n, bar=bar: progress.update(bar, completed=n))
                records = result.pop("_records")
                with open(out / "rows" / f"{name}.jsonl.tmp", "w", encoding="utf-8") as f:
                    for r in records:
                        f.write(json.dumps(r, ensure_ascii=False) + "\n")
                os.replace(out / "rows" / f"{name}.jsonl.tmp", out / "rows" / f"{name}.jsonl")
                cell = {"artifact": entry["path"], **entry, "device": device, "spec_fingerprint": spec_fp, **result}
                _write_json(cell_path, cell)
                cells.append(cell)
    doc = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        **_rescore_note(out / "bench.json", command, rescore),
        "conditions": conditions,
        "cells": cells,
    }
    _write_json(out / "bench.json", doc)
    return doc


def _rescore_note(previous: Path, command: str | None, rescore: bool) -> dict[str, Any]:
    """On --rescore, keep the command that generated the outputs and record the re-scoring one."""
    if not rescore or not previous.is_file():
        return {}
    first = json.loads(previous.read_text()).get("command")
    return {
        "command": first or command,
        "rescored_by": command,
        "rescored": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _rescore(sets: list, rows_path: Path) -> dict[str, Any]:
    """Quality of a finished cell from its stored raw outputs, with today's post-processing and metrics
    (no generation: a metric or cleaning fix applies to every cell alike)."""
    from edgewrite.evaluate import clean_output, score_outputs

    stored = {}
    for line in rows_path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        stored[(r["set"], r["id"])] = r
    outputs = {}
    for s in sets:
        key = f"{s.spec.task}/{s.spec.name}"
        try:
            outputs[key] = [clean_output(stored[(key, row["id"])]["raw_output"], row["source"]) for row in s.rows]
        except KeyError as e:
            raise EdgewriteError(f"{rows_path} lacks row {e}; re-run this cell (delete its cell file)") from e
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
