"""``edgewrite report``: tables, plots and a verdict, built only from stored bench results.

The verdict answers, per device: which artifact to ship under the latency and memory budget, how it
compares with ``copy`` and the untuned base model on every task, and what quantization cost against
the fp32 model it came from. Every claim rests on a paired bootstrap interval from ``bench.json``;
a difference whose interval contains zero is reported as "no significant difference".
"""

from __future__ import annotations

import html
import io
import json
import random
import re
from pathlib import Path
from typing import Any

from edgewrite.bench import COPY, SCHEMA
from edgewrite.bench import fp32_parent as _fp32_parent
from edgewrite.errors import EdgewriteError
from edgewrite.tasks import TASK_NAMES


def load_bench(bench_dir: Path) -> dict[str, Any]:
    path = bench_dir / "bench.json" if bench_dir.is_dir() else bench_dir
    if not path.is_file():
        raise EdgewriteError(f"{bench_dir} has no bench.json; run `edgewrite bench ... --out {bench_dir}` first")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewriteError(f"{path} is not valid JSON; re-run edgewrite bench") from e
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise EdgewriteError(
            f"{path} is from bench schema '{found}', this edgewrite reads '{SCHEMA}': re-run "
            f"`edgewrite bench` with the same artifacts into a new --out folder"
        )
    cells = doc.get("cells")
    if not isinstance(cells, list) or not any(isinstance(c, dict) and c.get("artifact") == COPY for c in cells):
        raise EdgewriteError(f"{path} has no cells (or no copy row); re-run edgewrite bench")
    for c in cells:
        if not isinstance(c, dict) or not isinstance(c.get("quality"), dict) or "headline" not in c["quality"]:
            raise EdgewriteError(f"{path}: a cell lacks its quality scores; re-run edgewrite bench")
    return doc


def _tasks(doc: dict) -> list[str]:
    seen = {t for c in doc["cells"] for t in c["quality"]["headline"]}
    return [t for t in TASK_NAMES if t in seen] + sorted(t for t in seen if t not in TASK_NAMES)


def _pareto(points: list[tuple[float, float, int]]) -> set[int]:
    """Indices not dominated: no other point has lower-or-equal cost and higher-or-equal quality."""
    front = set()
    for x, y, i in points:
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for x2, y2, _ in points):
            front.add(i)
    return front


# --------------------------------------------------------------------------- comparisons and verdict
def comparison(doc: dict, a: str, b: str) -> dict | None:
    """The paired difference a - b (by cell id) with its intervals, from bench.json; None if not stored."""
    for c in doc.get("comparisons", []):
        if c["a"] == a and c["b"] == b:
            return c
        if c["a"] == b and c["b"] == a:

            def flip(v: dict) -> dict:
                return {"value": -v["value"], "lo": -v["hi"], "hi": -v["lo"]}

            return {
                "a": a,
                "b": b,
                "tasks": {t: flip(v) for t, v in c["tasks"].items()},
                "mean": flip(c["mean"]),
                **({"differ": c["differ"]} if "differ" in c else {}),
            }
    return None


def _sig(v: dict) -> int:
    """+1 significantly above zero, -1 below, 0 the interval contains zero."""
    return 1 if v["lo"] > 0 else -1 if v["hi"] < 0 else 0


def _delta(v: dict) -> str:
    return f"{v['value']:+.1f} [{v['lo']:+.1f}, {v['hi']:+.1f}]"


def against(doc: dict, a: dict, b: dict, name: str, tasks: list[str]) -> tuple[str, dict[str, int]]:
    """One sentence: where ``a`` is significantly better / no different / worse than ``b``."""
    cmp = comparison(doc, a["id"], b["id"])
    if cmp is None:
        return f"Against {name}: no paired comparison stored.", {}
    signs = {t: _sig(cmp["tasks"][t]) for t in tasks if t in cmp["tasks"]}
    better = [f"{t} {_delta(cmp['tasks'][t])}" for t in tasks if signs.get(t) == 1]
    same = [t for t in tasks if signs.get(t) == 0]
    worse = [f"{t} {_delta(cmp['tasks'][t])}" for t in tasks if signs.get(t) == -1]
    parts = [f"Against {name} ({_delta(cmp['mean'])} on the mean)"]
    parts.append("significantly better on " + ", ".join(better) if better else "better on no task")
    if same:
        parts.append("no significant difference on " + ", ".join(same))
    if worse:
        parts.append("significantly worse on " + ", ".join(worse))
    signs["mean"] = _sig(cmp["mean"])
    return parts[0] + ": " + "; ".join(parts[1:]) + ".", signs


def weight_bits(c: dict) -> int:
    """Bits per weight an artifact was quantized to (a llama.cpp type names them: Q4_0, IQ4_NL, Q8_0, F16);
    an unquantized model counts as 32."""
    if c.get("bits"):
        return int(c["bits"])
    if c.get("kind") == "quantized" and (m := re.search(r"\b(?:I?Q|TQ|B?F)(\d+)", c.get("label", ""))):
        return int(m.group(1))
    return 32


def _fits(c: dict, max_latency_ms: float | None, max_memory_mb: float | None, max_bits: int | None = None) -> bool:
    lat = (c.get("edit_latency_ms") or {}).get("p50") or 0
    return (
        (max_latency_ms is None or lat <= max_latency_ms)
        and (max_memory_mb is None or (c.get("peak_rss_mb") or 0) <= max_memory_mb)
        and (max_bits is None or weight_bits(c) <= max_bits)
    )


# Edit latencies within this fraction of the fastest count as a tie (run-to-run noise on a shared CPU).
LATENCY_TIE = 0.10


def _below(c: dict, rivals: dict[str, dict]) -> list[tuple[str, str, float, float]]:
    """(task, rival's name, score, rival's score) wherever ``c`` does not score above a rival."""
    out = []
    for name, r in rivals.items():
        for t, v in r["quality"]["headline"].items():
            if (mine := c["quality"]["headline"].get(t, 0.0)) <= v:
                out.append((t, name, mine, v))
    return out


def _outdone(doc: dict, c: dict, others: list[dict]) -> tuple[dict, str, dict] | None:
    """(other, task, difference) for another system that is significantly better than ``c`` on some task
    and significantly worse on none (paired intervals from bench.json); None if no such system."""
    for o in others:
        # a pre-pass variant against its own plain artifact is the pre-pass decision's business
        if o is c or o.get("artifact") == c.get("artifact") or not (cmp := comparison(doc, o["id"], c["id"])):
            continue
        better = [(t, v) for t, v in cmp["tasks"].items() if v["lo"] > 0]
        if better and not any(v["hi"] < 0 for v in cmp["tasks"].values()):
            return o, *better[0]
    return None


def _pick(
    doc: dict,
    fits: list[dict],
    pool: list[dict] | None = None,
    rivals: dict[str, dict] | None = None,
    per_task: bool = False,
) -> dict:
    """Among the systems that fit the budget and are not significantly worse than the best tuned system
    (over ``pool``, every candidate whether it fits or not: a budget limits what ships, not the quality
    bar), the fastest, where latencies within LATENCY_TIE of the fastest tie and the simpler system wins
    the tie (no pre-pass, then no importance matrix or type overrides), then the smaller peak
    memory. If none fitting is that good: the same rule
    against the best that fits. With ``rivals`` (copy and the untuned model), systems that score above
    every rival on every task come first: that is what the product promises, so a faster system that
    falls below one of them on a task ships only if none of the near-best systems clears them all. With
    ``per_task``, a near-best system that another near-best one beats significantly on some task, while
    losing significantly on none, is passed over: a tie on the mean does not hide a task it does worse."""

    def not_worse(c: dict, best: dict) -> bool:
        return c is best or (comparison(doc, c["id"], best["id"]) or {"mean": {"hi": -1}})["mean"]["hi"] >= 0

    top = max(pool or fits, key=lambda c: c["quality"]["mean"])
    near = [c for c in fits if not_worse(c, top)]
    if not near:
        best = max(fits, key=lambda c: c["quality"]["mean"])
        near = [c for c in fits if not_worse(c, best)]
    if rivals and (clean := [c for c in near if not _below(c, rivals)]):
        near = clean
    if per_task and (undominated := [c for c in near if not _outdone(doc, c, near)]):
        near = undominated

    def p50(c: dict) -> float:
        return (c.get("edit_latency_ms") or {}).get("p50") or 0

    fastest = min(p50(c) for c in near)
    tied = [c for c in near if p50(c) <= fastest * (1 + LATENCY_TIE)]
    return min(tied, key=lambda c: (bool(c.get("pre")), _extras(c), c.get("peak_rss_mb") or 0, p50(c)))


def _extras(c: dict) -> int:
    """What a system needs beyond its plain export: an importance matrix or a tuned rounding (a file that has
    to ship with it), per-tensor type overrides. Among tied systems the plainer one wins."""
    label = c.get("label", "")
    return (" imatrix" in label) + (" AutoRound" in label) + (" (" in label and "=" in label)


def _ci(c: dict) -> str:
    ci = c["quality"].get("mean_ci")
    return f"{c['quality']['mean']:.1f}" + (f" [{ci['lo']:.1f}, {ci['hi']:.1f}]" if ci else "")


def _device_verdict(
    doc: dict, device: str, max_latency_ms: float | None, max_memory_mb: float | None, max_bits: int | None = None
) -> dict:
    cells = doc["cells"]
    copy = next(c for c in cells if c["artifact"] == COPY)
    tasks = _tasks(doc)
    dev = [c for c in cells if c["device"] == device]
    base = next((c for c in dev if c.get("kind") == "base"), None)
    merged = next((c for c in dev if c.get("kind") == "merged"), None)
    harper = next((c for c in dev if c.get("kind") == "system" and c.get("runtime") == "harper"), None)
    # A pre-pass system competes only where the pre-pass decision says it earns its place (it helps some
    # task and hurts none against its plain artifact): otherwise the plain artifact stands for it, and a
    # latency difference between the two (the pre-pass only adds work) cannot pick it.
    pool = [
        c
        for c in dev
        if c.get("kind") not in ("base", "system") and (not c.get("pre") or _pre_pass_earns(doc, c, dev, tasks))
    ]
    fits = [c for c in pool if _fits(c, max_latency_ms, max_memory_mb, max_bits)]
    entry: dict[str, Any] = {
        "device": device,
        "budget": {"max_latency_ms": max_latency_ms, "max_memory_mb": max_memory_mb, "max_bits": max_bits},
    }
    if not fits:
        entry.update(
            ship=None,
            text=[f"No tuned artifact on {device} fits the budget; relax --max-latency-ms/--max-memory-mb/--max-bits."],
        )
        return entry
    rivals = {"copy": copy, **({"the untuned model": base} if base else {})}
    ship = _pick(doc, fits, pool, rivals, per_task=True)
    lat = ship.get("edit_latency_ms") or {}
    text = [
        f"Ship **{ship['label']}** on {device}: mean quality {_ci(ship)} (copy {_ci(copy)}"
        + (f", untuned base {_ci(base)}" if base else "")
        + f"), one-sentence edit p50 {lat.get('p50', 0):.0f} ms / p95 {lat.get('p95', 0):.0f} ms, "
        f"peak RSS {ship.get('peak_rss_mb', 0):.0f} MB, {ship['size_mb']:.0f} MB on disk."
    ]
    line, vs_copy = against(doc, ship, copy, "copy", tasks)
    text.append(line)
    vs_base: dict[str, int] = {}
    if base:
        line, vs_base = against(doc, ship, base, "the untuned base model", tasks)
        text.append(line)
    merged = _fp32_parent(dev, ship) or merged
    if merged and ship is not merged:
        text.append(_quantization_line(doc, ship, merged, tasks))
    # the export closest to its fp32 parent within the bit budget (latency aside), when it is not the shipped one
    kept = {id(c): _kept(c, p, tasks) for c in pool if _fits(c, None, None, max_bits) and (p := _fp32_parent(dev, c))}
    if kept and (best := max((c for c in pool if id(c) in kept), key=lambda c: kept[id(c)])) is not ship:
        if kept[id(best)] > kept.get(id(ship), 0):
            line = _quantization_line(doc, best, _fp32_parent(dev, best), tasks).removeprefix("Against its ")
            lat_best = (best.get("edit_latency_ms") or {}).get("p50") or 0
            over = "" if _fits(best, max_latency_ms, max_memory_mb) else ", over the budget"
            text.append(
                f"Closest to its fp32 parent{f' at ≤ {max_bits} bits' if max_bits else ''}: {best['label']} "
                f"(edit p50 {lat_best:.0f} ms{over}): against its {line}"
            )
    if harper:
        text.append(_harper_line(doc, ship, harper, tasks))
    if (fast := _pick(doc, fits, pool)) is not ship and (short := _below(fast, rivals)):
        t, who, mine, theirs = short[0]
        text.append(
            f"Passed over: {fast['label']} (edit p50 {(fast.get('edit_latency_ms') or {}).get('p50') or 0:.0f} ms, "
            f"{_ci(fast)}, not significantly worse than the best): it scores below {who} on {t} "
            f"({mine:.1f} vs {theirs:.1f}), and the shipped model must beat copy and the untuned model on every task."
        )
    if (alt := _pick(doc, fits, pool, rivals)) is not ship and (why := _outdone(doc, alt, [ship])):
        _, t, v = why
        text.append(
            f"Passed over: {alt['label']} (edit p50 {(alt.get('edit_latency_ms') or {}).get('p50') or 0:.0f} ms, "
            f"{_ci(alt)}, as good on the mean): {ship['label']} does significantly better on {t} ({_delta(v)}) "
            "and significantly worse on none."
        )
    for pre in [c for c in dev if c.get("pre") and not ship.get("pre")]:
        if (plain := _plain_of(pre, dev)) is not None:
            text.append(_pre_pass_line(doc, pre, plain, tasks, _fits(pre, max_latency_ms, max_memory_mb, max_bits)))
    for pol in [c for c in dev if c.get("policy")]:
        if (plain := _plain_of(pol, dev)) is not None:
            text.append(_policy_line(doc, pol, plain, tasks))
    text.append("Worth it: " + _worth(ship, vs_copy, vs_base, base, tasks))
    if max_latency_ms is not None or max_memory_mb is not None or max_bits is not None:
        text.append(
            "Budget: "
            + ", ".join(
                s
                for s in (
                    f"edit p50 ≤ {max_latency_ms:g} ms" if max_latency_ms is not None else "",
                    f"peak RSS ≤ {max_memory_mb:g} MB" if max_memory_mb is not None else "",
                    f"≤ {max_bits} bits per weight" if max_bits is not None else "",
                )
                if s
            )
            + "."
        )
        if (top := max(pool, key=lambda c: c["quality"]["mean"])) is not ship and not _fits(
            top, max_latency_ms, max_memory_mb, max_bits
        ):
            free = _pick(doc, pool, pool, rivals, per_task=True)
            if free is not ship:
                lat_free = (free.get("edit_latency_ms") or {}).get("p50") or 0
                text.append(
                    f"Without the budget: {free['label']} ({_ci(free)}, edit p50 {lat_free:.0f} ms, "
                    f"peak RSS {free.get('peak_rss_mb') or 0:.0f} MB, {free['size_mb']:.0f} MB on disk)."
                )
    entry.update(ship=ship["label"], artifact=ship["artifact"], vs_copy=vs_copy, vs_base=vs_base, text=text)
    return entry


def _kept(cell: dict, merged: dict, tasks: list[str]) -> float:
    """The lowest per-task share (%) of its fp32 parent's score that a quantized cell keeps."""
    q, m = cell["quality"]["headline"], merged["quality"]["headline"]
    return min((q.get(t, 0) / m[t] * 100 for t in tasks if m.get(t)), default=0.0)


def _quantization_line(doc: dict, ship: dict, merged: dict, tasks: list[str]) -> str:
    q, m = ship["quality"]["headline"], merged["quality"]["headline"]
    kept = {t: q.get(t, 0) / m[t] * 100 for t in tasks if m.get(t)}
    worst = min(kept, key=kept.get) if kept else None
    cmp = comparison(doc, ship["id"], merged["id"])
    losses = [t for t in tasks if cmp and _sig(cmp["tasks"][t]) == -1]
    speed = (merged.get("edit_latency_ms") or {}).get("p50", 0) / max(
        (ship.get("edit_latency_ms") or {}).get("p50") or 1e-9, 1e-9
    )
    return (
        f"Against its fp32 parent ({merged['label']}): {_delta(cmp['mean']) if cmp else '?'} on the mean, "
        + ("significantly lower on " + ", ".join(losses) if losses else "no significant loss on any task")
        + (
            f"; its output differs from the parent's on {cmp['differ'] * 100:.0f}% of dev rows"
            if cmp and cmp.get("differ") is not None
            else ""
        )
        + f"; it keeps {ship['quality']['mean'] / merged['quality']['mean'] * 100:.1f}% of the mean score"
        + (f" (lowest: {worst}, {kept[worst]:.1f}%)" if worst else "")
        + f", at {speed:.1f}x the speed and {ship['size_mb'] / max(merged['size_mb'], 1e-9) * 100:.0f}% of the size."
    )


def _plain_of(pre: dict, dev: list[dict]) -> dict | None:
    return next((c for c in dev if c["artifact"] == pre["artifact"] and not c.get("pre") and not c.get("policy")), None)


def _policy_line(doc: dict, pol: dict, plain: dict, tasks: list[str]) -> str:
    """A model under its per-task policy (what assist, serve, lsp and check apply by default) against the
    same model without it, paired on the same rows."""
    line, signs = against(doc, pol, plain, f"{plain['label']} without it", tasks)
    hurts = [t for t in tasks if signs.get(t) == -1]
    helps = [t for t in tasks if signs.get(t) == 1]
    if hurts:
        decision = f"it hurts {', '.join(hurts)}: choose the policy again (benchmarks/edit_confidence.py)"
    elif helps:
        decision = f"keep it on: it helps {', '.join(helps)} and hurts no task"
    else:
        decision = "it changes no task beyond its interval"
    return f"Under its per-task policy: {line[0].lower()}{line[1:]} Decision: {decision}."


def _pre_pass_earns(doc: dict, pre: dict, dev: list[dict], tasks: list[str]) -> bool:
    plain = _plain_of(pre, dev)
    if plain is None:
        return True
    _, signs = against(doc, pre, plain, "", tasks)
    return any(signs.get(t) == 1 for t in tasks) and not any(signs.get(t) == -1 for t in tasks)


def _pre_pass_line(doc: dict, pre: dict, plain: dict, tasks: list[str], fits: bool = True) -> str:
    """The pre-pass decision: on by default only if it helps some task and hurts none beyond its interval
    (and the system with it fits the report's budget)."""
    line, signs = against(doc, pre, plain, f"{plain['label']} alone", tasks)
    helps = [t for t in tasks if signs.get(t) == 1]
    hurts = [t for t in tasks if signs.get(t) == -1]
    if helps and not hurts and not fits:
        p50 = (pre.get("edit_latency_ms") or {}).get("p50") or 0
        decision = f"off by default (it hurts no task, but with it an edit takes {p50:.0f} ms, over the budget);"
        decision += f" `--pre {pre['pre']}` for {', '.join(helps)} work"
    elif helps and not hurts:
        decision = "worth making the default"
    elif helps:
        decision = f"off by default (it hurts {', '.join(hurts)}); `--pre {pre['pre']}` for {', '.join(helps)} work"
    else:
        decision = "off by default (it helps no task)"
    return f"Pre-pass {pre['pre']}: {line[0].lower()}{line[1:]} Decision: {decision}."


def _harper_line(doc: dict, ship: dict, harper: dict, tasks: list[str]) -> str:
    """The shipped model against the free rule-based checker a laptop user already has."""
    line, signs = against(doc, ship, harper, "Harper (rule-based, free, no model)", tasks)
    lat = ((ship.get("edit_latency_ms") or {}).get("p50") or 0) / max(
        (harper.get("edit_latency_ms") or {}).get("p50") or 1e-9, 1e-9
    )
    mem = (ship.get("peak_rss_mb") or 0) / max(harper.get("peak_rss_mb") or 1e-9, 1e-9)
    checking = [t for t in ("grammar", "fluency") if t in tasks]
    better = [t for t in tasks if signs.get(t) == 1]
    if checking and all(signs.get(t) != 1 for t in checking):
        action = (
            f"For grammar and spelling alone, Harper is enough: the model is not significantly better on "
            f"{' or '.join(checking)}, at {lat:.0f}x Harper's time per edit and {mem:.1f}x its memory"
        )
        action += f"; the model earns its cost on {', '.join(better)}." if better else "."
    elif better:
        action = (
            f"The model is significantly better than Harper on {', '.join(better)}, "
            f"at {lat:.0f}x Harper's time per edit and {mem:.1f}x its memory."
        )
    else:
        action = f"The model is better than Harper on no task, at {lat:.0f}x its time: use Harper."
    return line + " " + action


def _worth(ship: dict, vs_copy: dict[str, int], vs_base: dict[str, int], base: dict | None, tasks: list[str]) -> str:
    copy_better = [t for t in tasks if vs_copy.get(t) == 1]
    base_better = [t for t in tasks if vs_base.get(t) == 1]
    copy_worse = [t for t in tasks if vs_copy.get(t) == -1]
    base_worse = [t for t in tasks if vs_base.get(t) == -1]
    if vs_copy.get("mean") != 1:
        return "no: on the mean it is not significantly better than returning the text unchanged."
    if base and vs_base.get("mean") != 1:
        return (
            "not yet: it beats copy on the mean, but is not significantly better than the untuned base model"
            + (f" (worse on {', '.join(base_worse)})" if base_worse else "")
            + "."
        )
    if copy_worse or base_worse:
        return (
            "partly: significantly better than copy and the untuned model on the mean, but significantly worse on "
            + ", ".join(sorted(set(copy_worse + base_worse)))
            + "."
        )
    return (
        f"yes: significantly better than copy on {len(copy_better)} of {len(tasks)} tasks and than the untuned "
        f"model on {len(base_better)} of {len(tasks)}, worse on none, offline at this cost."
    )


def verdict(
    doc: dict, max_latency_ms: float | None, max_memory_mb: float | None, max_bits: int | None = None
) -> list[dict[str, Any]]:
    devices = sorted({c["device"] for c in doc["cells"] if c["device"] != "-"})
    return [_device_verdict(doc, d, max_latency_ms, max_memory_mb, max_bits) for d in devices]


# --------------------------------------------------------------------------- tables
_SUMMARY_HEAD = (
    "artifact",
    "device",
    "MB",
    "edit p50 ms",
    "edit p95 ms",
    "decode tok/s",
    "peak RSS MB",
    "mean [95% CI]",
)


def _summary_rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    """The one summary table, as header and text cells; the terminal and markdown views share it."""
    tasks = _tasks(doc)
    rows = []
    for c in doc["cells"]:
        lat = c.get("edit_latency_ms") or {}
        rows.append(
            [
                c["label"],
                c["device"],
                f"{c['size_mb']:.0f}",
                _fmt(lat.get("p50")),
                _fmt(lat.get("p95")),
                _fmt(c.get("decode_tok_s")),
                _fmt(c.get("peak_rss_mb")),
                _ci(c),
                *(_fmt(c["quality"]["headline"].get(t), 1) for t in tasks),
            ]
        )
    return [*_SUMMARY_HEAD, *tasks], rows


def terminal_table(doc: dict) -> Any:
    from rich.table import Table

    head, rows = _summary_rows(doc)
    table = Table(title="edgewrite bench: quality (0-100) vs cost")
    for col in head:
        table.add_column(col, justify="left" if col in ("artifact", "device") else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _fmt(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def headline_sources(doc: dict) -> str:
    """Which evaluation set and metric gave each task's number (from the copy row, scored on every set)."""
    copy = next(c for c in doc["cells"] if c["artifact"] == COPY)
    source = copy["quality"].get("headline_source", {})
    rows = copy["quality"].get("headline_rows", {})
    return "; ".join(f"{t}: {source[t]} ({rows.get(t, '?')} rows)" for t in _tasks(doc) if t in source)


def markdown_table(doc: dict) -> str:
    head, rows = _summary_rows(doc)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    cond = doc["conditions"]
    resamples = next(c for c in doc["cells"] if c["artifact"] == COPY)["quality"].get("resamples", 1000)
    sample = "every row" if not cond.get("limit_per_set") else f"{cond['limit_per_set']} per set"
    if cond.get("headline_only"):
        sample += " of each task's headline set"
    lines += [
        "",
        f"Task scores (0-100): {headline_sources(doc)}. Intervals: 95 % paired bootstrap, {resamples} resamples "
        f"of rows. {cond['rows']} dev rows per system ({sample}), {cond['cpu']}, {cond['threads']} threads.",
    ]
    return "\n".join(lines)


def _task_table(doc: dict) -> tuple[list[str], list[list[str]]]:
    tasks = _tasks(doc)
    rows = []
    for c in doc["cells"]:
        ci = c["quality"].get("headline_ci", {})
        cells = []
        for t in tasks:
            v = c["quality"]["headline"].get(t)
            cells.append(
                "–" if v is None else f"{v:.1f}" + (f" [{ci[t]['lo']:.1f}, {ci[t]['hi']:.1f}]" if t in ci else "")
            )
        rows.append([c["label"], c["device"], _ci(c), *cells])
    return ["artifact", "device", "mean", *tasks], rows


# --------------------------------------------------------------------------- plots
def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars_svg(doc: dict) -> str:
    """Per task (and the mean): one bar per system with its 95 % interval as a whisker."""
    plt = _plt()
    tasks = _tasks(doc) + ["mean"]
    cells = doc["cells"]
    fig, ax = plt.subplots(figsize=(11, 4.2), dpi=100)
    width = 0.8 / len(cells)
    for i, c in enumerate(cells):
        q = c["quality"]
        ci = {**q.get("headline_ci", {}), **({"mean": q["mean_ci"]} if q.get("mean_ci") else {})}
        vals = [q["headline"].get(t, 0) if t != "mean" else q["mean"] for t in tasks]
        lo = [v - ci[t]["lo"] if t in ci else 0 for v, t in zip(vals, tasks, strict=True)]
        hi = [ci[t]["hi"] - v if t in ci else 0 for v, t in zip(vals, tasks, strict=True)]
        xs = [j + (i - (len(cells) - 1) / 2) * width for j in range(len(tasks))]
        ax.bar(xs, vals, width, label=f"{c['label']} [{c['device']}]" if c["device"] != "-" else c["label"])
        ax.errorbar(xs, vals, yerr=[lo, hi], fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("headline score (0-100)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def _scatter_svg(doc: dict, cost_key: str, xlabel: str) -> str:
    plt = _plt()
    cells = [c for c in doc["cells"] if c["device"] != "-" and c.get("edit_latency_ms")]
    copy = next(c for c in doc["cells"] if c["artifact"] == COPY)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    points = []
    for i, c in enumerate(cells):
        x = c["edit_latency_ms"]["p50"] if cost_key == "latency" else c["peak_rss_mb"]
        points.append((x, c["quality"]["mean"], i))
    front = _pareto(points)
    for x, y, i in points:
        c = cells[i]
        ci = c["quality"].get("mean_ci")
        yerr = [[y - ci["lo"]], [ci["hi"] - y]] if ci else None
        color = "#d62728" if i in front else "#1f77b4"
        ax.errorbar([x], [y], yerr=yerr, fmt="o" if c["device"] == "cpu" else "s", color=color, capsize=3, zorder=3)
        ax.annotate(f"{c['label']} [{c['device']}]", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    fx = sorted((x, y) for x, y, i in points if i in front)
    if fx:
        ax.plot([p[0] for p in fx], [p[1] for p in fx], color="#d62728", lw=1, ls="--", label="Pareto front")
    ax.axhline(copy["quality"]["mean"], color="gray", lw=1, ls=":", label="copy (input unchanged)")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean task quality (0-100)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


def _curve_svg(label: str, curve: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    if curve["train"]:
        ax.plot(
            [p["step"] for p in curve["train"]],
            [p["loss"] for p in curve["train"]],
            color="#1f77b4",
            label="train loss",
        )
    ax.set_xlabel("step")
    ax.set_ylabel("train loss", color="#1f77b4")
    if curve["dev"]:
        ax2 = ax.twinx()
        ax2.plot(
            [p["step"] for p in curve["dev"]],
            [p["mean"] for p in curve["dev"]],
            "o-",
            color="#d62728",
            label="dev mean headline",
        )
        ax2.set_ylabel("dev mean headline score", color="#d62728")
        if curve.get("best_step") is not None:
            ax2.axvline(curve["best_step"], color="#d62728", ls=":", lw=1)
    ax.set_title(f"training: {label}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(fig)


# --------------------------------------------------------------------------- examples
EXAMPLES_PER_TASK = 5
EXAMPLES_SEED = 2024


def examples(doc: dict, bench_dir: Path, cell: dict) -> dict[str, list[dict]]:
    """Per task, EXAMPLES_PER_TASK rows of its headline set drawn by a seeded rule (the same rows for any
    system), with the system's output and the first reference."""
    from edgewrite.bench import read_rows, rows_path

    path = rows_path(bench_dir, cell["id"])
    if not path.is_file():
        return {}
    by_set: dict[str, list[dict]] = {}
    for r in read_rows(path):
        by_set.setdefault(r["set"], []).append(r)
    copy = next(c for c in doc["cells"] if c["artifact"] == COPY)
    out = {}
    for task, source in copy["quality"].get("headline_source", {}).items():
        key = f"{task}/{source.split()[0]}"
        rows = by_set.get(key, [])
        if rows:
            pick = sorted(
                random.Random(f"{EXAMPLES_SEED}-{key}").sample(range(len(rows)), min(EXAMPLES_PER_TASK, len(rows)))
            )
            out[task] = [rows[i] for i in pick]
    return out


def _diff_html(before: str, after: str) -> str:
    from edgewrite.edit.text import word_diff

    style = {"=": "", "-": "del", "+": "ins"}
    parts = []
    for op, text in word_diff(before, after):
        tag = style[op]
        parts.append(f"<{tag}>{html.escape(text)}</{tag}>" if tag else html.escape(text))
    return "".join(parts)


# --------------------------------------------------------------------------- the page
def _table_html(rows: list[list[str]], head: list[str]) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _para(s: str) -> str:
    s = html.escape(s)
    while "**" in s:
        s = s.replace("**", "<b>", 1).replace("**", "</b>", 1)
    return f"<p>{s}</p>"


def _cost_rows(doc: dict) -> list[list[str]]:
    rows = []
    for c in doc["cells"]:
        lat, ttft = c.get("edit_latency_ms") or {}, c.get("ttft_ms") or {}
        rows.append(
            [
                c["label"],
                c["device"],
                _fmt(c["size_mb"]),
                _fmt(c.get("load_s"), 2),
                _fmt(ttft.get("p50"), 1),
                _fmt(ttft.get("p95"), 1),
                _fmt(lat.get("p50")),
                _fmt(lat.get("p95")),
                _fmt(c.get("decode_tok_s"), 1),
                _fmt(c.get("peak_rss_mb")),
                _fmt(c.get("peak_gpu_mb")),
                _pct(c.get("decode_bound_share")),
                _pct((c.get("agreement") or {}).get("token_agreement"), 2),
                _fmt(c.get("wall_s")),
            ]
        )
    return rows


def _pct(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v * 100:.{digits}f} %"


_COST_HEAD = [
    "artifact",
    "device",
    "MB on disk",
    "load s",
    "TTFT p50 ms",
    "TTFT p95 ms",
    "edit p50 ms",
    "edit p95 ms",
    "decode tok/s",
    "peak RSS MB",
    "peak GPU MB",
    "of bandwidth bound",
    "agrees with fp32 (tokens)",
    "bench wall s",
]


def _examples_html(doc: dict, bench_dir: Path, verdicts: list[dict]) -> str:
    ship = next((v for v in verdicts if v.get("ship")), None)
    if ship is None:
        return "<p>No shipped artifact, so no examples.</p>"
    cell = next(c for c in doc["cells"] if c["label"] == ship["ship"] and c["device"] == ship["device"])
    parts = [
        f"<p>Outputs of <b>{html.escape(cell['label'])}</b>; rows drawn with <code>random.Random"
        f'("{EXAMPLES_SEED}-&lt;set&gt;")</code> from each task\'s headline set, the same rows for any system '
        "(not picked by hand). Deleted words are struck, inserted ones underlined.</p>"
    ]
    for task, rows in examples(doc, bench_dir, cell).items():
        items = "".join(
            "<li><div class='src'>" + html.escape(r["source"]) + "</div>"
            "<div class='diff'>→ " + _diff_html(r["source"], r["output"]) + "</div>"
            "<div class='ref'>reference: " + html.escape(r["references"][0]) + "</div></li>"
            for r in rows
        )
        parts.append(f"<h3>{html.escape(task)}</h3><ol class='examples'>{items}</ol>")
    return "".join(parts)


def render_html(doc: dict, verdicts: list[dict], bench_dir: Path) -> str:
    cond = doc["conditions"]
    set_names = sorted({k for c in doc["cells"] for k in c["quality"]["sets"]})
    detail_rows = [
        [c["label"], c["device"], k, ", ".join(f"{m} {v:.2f}" for m, v in c["quality"]["sets"].get(k, {}).items())]
        for c in doc["cells"]
        for k in set_names
    ]
    verdict_html = "".join(
        f"<h3>{html.escape(v['device'])}</h3>" + "".join(_para(t) for t in v["text"]) for v in verdicts
    )
    head, rows = _task_table(doc)
    curves = "".join(_curve_svg(label, curve) for label, curve in (doc.get("training") or {}).items())
    sample = "every row" if not cond.get("limit_per_set") else f"a seeded sample of {cond['limit_per_set']} per set"
    if cond.get("headline_only"):
        sample += " of each task's headline set"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgewrite report</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} th{{background:#f3f3f3}} .plots{{display:flex;flex-wrap:wrap;gap:1em}}
.verdict{{background:#f6fbf6;border-left:4px solid #2ca02c;padding:0.5em 1em}} code{{background:#f3f3f3;padding:0 3px}}
del{{color:#b00;background:#fdd}} ins{{color:#060;background:#dfd;text-decoration:underline}}
ol.examples li{{margin:0.5em 0}} .src{{color:#555}} .ref{{color:#777;font-size:12px}}
</style></head><body>
<h1>edgewrite: is the tuned, quantized model worth shipping?</h1>
<div class="verdict"><h2>Verdict</h2>{verdict_html}</div>
<h2>Quality per task (0-100, 95 % bootstrap intervals)</h2>
{_table_html(rows, head)}
<p>Each task's number: {html.escape(headline_sources(doc))}. F0.5 (M2 scorer), GLEU (JFLEG scorer) and SARI
(EASSE) as the field computes them.</p>
{_bars_svg(doc)}
<h2>Cost</h2>
{_table_html(_cost_rows(doc), _COST_HEAD)}
<h2>Quality against cost (Pareto front in red)</h2>
<div class="plots">{_scatter_svg(doc, "latency", "one-sentence edit latency p50 (ms, log)")}
{_scatter_svg(doc, "memory", "peak RSS (MB, log)")}</div>
<h2>Training</h2>
<div class="plots">{curves or "<p>No training log travels with these artifacts.</p>"}</div>
<h2>Example edits</h2>
{_examples_html(doc, bench_dir, verdicts)}
<h2>Every evaluation set</h2>
{_table_html(detail_rows, ["artifact", "device", "set", "scores"])}
<h2>Conditions</h2>
<p>{html.escape(cond["cpu"])}, {cond["cores"]} cores, {cond["threads"]} threads; {cond["rows"]} rows per system
({cond["split"]} split, {sample});
quality decoded {cond.get("quality_batch_size", 1)} prompts at a time where the runtime batches, latency one
request at a time;
commit {html.escape(str(cond.get("commit")))}, created {html.escape(doc["created"])}.
Command: <code>{html.escape(str(doc.get("command")))}</code>. Versions: {html.escape(json.dumps(cond["versions"]))}.</p>
</body></html>
"""


def _remember_recommendation(verdicts: list[dict]) -> None:
    """The last report's pick per device, kept for `edgewrite models --use` (it does not change the default)."""
    from edgewrite.models import edgewrite_home

    picks = {v["device"]: v["artifact"] for v in verdicts if v.get("artifact")}
    if picks:
        home = edgewrite_home()
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / "recommended.json.tmp"
        tmp.write_text(json.dumps(picks, indent=2) + "\n")
        tmp.replace(home / "recommended.json")


def recommended_artifact(device: str) -> str | None:
    from edgewrite.models import edgewrite_home

    path = edgewrite_home() / "recommended.json"
    if not path.is_file():
        return None
    try:
        pick = json.loads(path.read_text()).get(device)
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None
    return pick if isinstance(pick, str) and (Path(pick) / "manifest.json").is_file() else None


def markdown_report(doc: dict, verdicts: list[dict]) -> str:
    head, rows = _task_table(doc)
    per_task = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    return (
        "# edgewrite bench\n\n"
        + markdown_table(doc)
        + "\n\nPer task, with 95 % intervals:\n\n"
        + "\n".join(per_task)
        + closeness_table(doc)
        + "\n\n## Verdict\n\n"
        + "\n\n".join("\n".join(v["text"]) for v in verdicts)
        + "\n"
    )


def closeness_table(doc: dict) -> str:
    """How close each export decodes to the memory bus's bound, and to its fp32 parent's answers
    (teacher-forced, `edgewrite bench --agreement`): empty when the bench measured neither."""
    cells = [c for c in doc["cells"] if c.get("agreement") or c.get("decode_bound_share")]
    if not cells:
        return ""
    bw = doc["conditions"].get("memory_bandwidth_gbs")
    lines = [
        "",
        "",
        "| artifact | decode tok/s | of bandwidth bound | answer tokens agreeing with fp32 "
        "| answers kept whole | rows |",
        "|---|---|---|---|---|---|",
    ]
    for c in cells:
        a = c.get("agreement") or {}
        lines.append(
            f"| {c['label']} | {_fmt(c.get('decode_tok_s'), 1)} | {_pct(c.get('decode_bound_share'))} | "
            f"{_pct(a.get('token_agreement'), 2)} | {_pct(a.get('answers_kept'))} | {a.get('rows', '–')} |"
        )
    lines += [
        "",
        "Bound: decoding a token reads every weight once, so tok/s <= bandwidth / weight bytes"
        + (f" ({bw} GB/s measured by copying arrays)" if bw else "")
        + ". Agreement: the export's top token against each token of its fp32 parent's greedy answer, "
        "teacher-forced on a seeded sample of the parent's rows.",
    ]
    return "\n".join(lines)


def write_report(
    bench_dir: Path,
    out: Path | None,
    max_latency_ms: float | None,
    max_memory_mb: float | None,
    max_bits: int | None = None,
) -> tuple[dict, list[dict], Path]:
    budgets = (("--max-latency-ms", max_latency_ms), ("--max-memory-mb", max_memory_mb), ("--max-bits", max_bits))
    for name, value in budgets:
        if value is not None and value <= 0:
            raise EdgewriteError(f"{name} {value:g}: a budget must be a positive number")
    doc = load_bench(bench_dir)
    folder = bench_dir if bench_dir.is_dir() else bench_dir.parent
    target = out or folder / "report.html"
    if target.is_dir():
        raise EdgewriteError(f"--out {target} is a folder; give the HTML file to write")
    if not target.parent.is_dir():
        raise EdgewriteError(f"--out {target}: folder {target.parent} does not exist")
    verdicts = verdict(doc, max_latency_ms, max_memory_mb, max_bits)
    page = render_html(doc, verdicts, folder)
    md = markdown_report(doc, verdicts)
    try:
        for path, text in ((target, page), (target.with_suffix(".md"), md)):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
    except OSError as e:
        raise EdgewriteError(f"cannot write the report to {target} ({e.strerror}); choose a writable --out") from e
    _remember_recommendation(verdicts)
    return doc, verdicts, target
