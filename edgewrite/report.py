"""``edgewrite report``: tables, plots and a verdict, built only from stored bench results.

The verdict answers, per device: which artifact to ship under the latency and memory budget, how
much tuning gained over the untuned base model and over ``copy``, and what quantization cost
against the merged (fp32) model.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from edgewrite.bench import COPY, SCHEMA
from edgewrite.errors import EdgewriteError
from edgewrite.tasks import TASK_NAMES


def load_bench(bench_dir: Path) -> dict[str, Any]:
    path = bench_dir / "bench.json" if bench_dir.is_dir() else bench_dir
    if not path.is_file():
        raise EdgewriteError(f"{bench_dir} has no bench.json; run `edgewrite bench ... --out {bench_dir}` first")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EdgewriteError(f"{path} is not valid JSON ({e.msg}); re-run edgewrite bench") from e
    if doc.get("schema") != SCHEMA:
        raise EdgewriteError(
            f"{path} is from bench schema '{doc.get('schema')}', this edgewrite reads '{SCHEMA}': "
            "re-run `edgewrite bench` into a new folder"
        )
    return doc


def _tasks(doc: dict) -> list[str]:
    seen = {t for c in doc["cells"] for t in c["quality"]["headline"]}
    return [t for t in TASK_NAMES if t in seen]


def _pareto(points: list[tuple[float, float, int]]) -> set[int]:
    """Indices not dominated: no other point has lower-or-equal cost and higher-or-equal quality."""
    front = set()
    for x, y, i in points:
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for x2, y2, _ in points):
            front.add(i)
    return front


def verdict(doc: dict, max_latency_ms: float | None, max_memory_mb: float | None) -> list[dict[str, Any]]:
    cells = doc["cells"]
    copy = next(c for c in cells if c["artifact"] == COPY)
    tasks = _tasks(doc)
    out = []
    for device in sorted({c["device"] for c in cells if c["device"] != "-"}):
        dev = [c for c in cells if c["device"] == device]
        base = next((c for c in dev if c.get("kind") == "base"), None)
        merged = next((c for c in dev if c.get("kind") == "merged"), None)
        tuned = [c for c in dev if c.get("kind") != "base"]
        fits = [
            c
            for c in tuned
            if (max_latency_ms is None or (c["edit_latency_ms"]["p50"] or 0) <= max_latency_ms)
            and (max_memory_mb is None or c["peak_rss_mb"] <= max_memory_mb)
        ]
        entry: dict[str, Any] = {
            "device": device,
            "budget": {"max_latency_ms": max_latency_ms, "max_memory_mb": max_memory_mb},
        }
        if not fits:
            entry["ship"] = None
            entry["text"] = [f"No tuned artifact on {device} fits the budget; relax --max-latency-ms/--max-memory-mb."]
            out.append(entry)
            continue
        best_q = max(c["quality"]["mean"] for c in fits)
        # Within half a point of the best quality, the faster artifact wins.
        near = [c for c in fits if c["quality"]["mean"] >= best_q - 0.5]
        ship = min(near, key=lambda c: (c["edit_latency_ms"]["p50"] or 0, c["peak_rss_mb"]))
        q = ship["quality"]["headline"]
        beats_copy = [t for t in tasks if q.get(t, 0) > copy["quality"]["headline"].get(t, 0)]
        text = [
            f"Ship **{ship['label']}** on {device}: mean quality {ship['quality']['mean']:.1f} "
            f"(copy {copy['quality']['mean']:.1f}"
            + (f", untuned base {base['quality']['mean']:.1f}" if base else "")
            + f"), one-sentence edit p50 {ship['edit_latency_ms']['p50']:.0f} ms / p95 "
            f"{ship['edit_latency_ms']['p95']:.0f} ms, peak RSS {ship['peak_rss_mb']:.0f} MB, "
            f"{ship['size_mb']:.0f} MB on disk."
        ]
        text.append(
            f"It beats copy on {len(beats_copy)} of {len(tasks)} tasks"
            + (
                f" (not on {', '.join(t for t in tasks if t not in beats_copy)})"
                if len(beats_copy) < len(tasks)
                else ""
            )
            + "."
        )
        if base and merged:
            gain_base = merged["quality"]["mean"] - base["quality"]["mean"]
            better = [
                t for t in tasks if merged["quality"]["headline"].get(t, 0) > base["quality"]["headline"].get(t, 0)
            ]
            text.append(
                f"Tuning gained {gain_base:+.1f} points of mean quality over the untuned base model "
                f"({len(better)} of {len(tasks)} tasks better) and "
                f"{merged['quality']['mean'] - copy['quality']['mean']:+.1f} over copy."
            )
        if merged and ship is not merged:
            kept = {
                t: q.get(t, 0) / merged["quality"]["headline"][t] * 100
                for t in tasks
                if merged["quality"]["headline"].get(t)
            }
            worst = min(kept, key=kept.get) if kept else None
            text.append(
                f"Quantization kept {ship['quality']['mean'] / merged['quality']['mean'] * 100:.1f}% of the "
                f"merged model's mean score"
                + (f" (lowest: {worst}, {kept[worst]:.1f}%)" if worst else "")
                + f", at {merged['edit_latency_ms']['p50'] / max(ship['edit_latency_ms']['p50'], 1e-9):.1f}x "
                f"the speed and {ship['size_mb'] / max(merged['size_mb'], 1e-9) * 100:.0f}% of the size."
            )
        thin = [t for t in beats_copy if q.get(t, 0) - copy["quality"]["headline"].get(t, 0) < 1.0]
        if thin:
            text.append(
                f"The margin over copy is under 1 point on {', '.join(thin)}: within the noise of "
                f"{doc['conditions'].get('limit_per_set') or 'all'} rows per evaluation set."
            )
        beats_base = base is None or ship["quality"]["mean"] > base["quality"]["mean"]
        if len(beats_copy) < len(tasks):
            worth = "not yet: copy still wins on " + ", ".join(t for t in tasks if t not in beats_copy) + "."
        elif not beats_base:
            better = [t for t in tasks if q.get(t, 0) > base["quality"]["headline"].get(t, 0)]
            worth = (
                f"not yet: it improves on doing nothing for every task, but the untuned base model scores "
                f"higher on average ({base['quality']['mean']:.1f}); tuning helps on {', '.join(better) or 'no task'}"
                f", and the shipped artifact is {base['edit_latency_ms']['p50'] / ship['edit_latency_ms']['p50']:.1f}x "
                f"faster than the base model in fp32."
            )
        else:
            worth = "yes: it beats doing nothing on every task and the untuned model on average, offline, at this cost."
        text.append("Worth it: " + worth)
        entry.update({"ship": ship["label"], "artifact": ship["artifact"], "beats_copy": beats_copy, "text": text})
        out.append(entry)
    return out


_SUMMARY_HEAD = ("artifact", "device", "MB", "edit p50 ms", "edit p95 ms", "decode tok/s", "peak RSS MB", "mean")


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
                _fmt(c["quality"]["mean"], 1),
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
    source = doc["cells"][0]["quality"].get("headline_source", {})
    return "; ".join(f"{t}: {source[t]}" for t in _tasks(doc) if t in source)


def markdown_table(doc: dict) -> str:
    head, rows = _summary_rows(doc)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"Task scores (0-100): {headline_sources(doc)}."]
    return "\n".join(lines)


def _scatter_svg(doc: dict, cost_key: str, xlabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in doc["cells"] if c["device"] != "-"]
    copy = next(c for c in doc["cells"] if c["artifact"] == COPY)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    points = []
    for i, c in enumerate(cells):
        x = c["edit_latency_ms"]["p50"] if cost_key == "latency" else c["peak_rss_mb"]
        points.append((x, c["quality"]["mean"], i))
    front = _pareto(points)
    for x, y, i in points:
        c = cells[i]
        ax.scatter(
            [x],
            [y],
            s=60,
            marker="o" if c["device"] == "cpu" else "s",
            color="#d62728" if i in front else "#1f77b4",
            zorder=3,
        )
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
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def render_html(doc: dict, verdicts: list[dict]) -> str:
    tasks = _tasks(doc)
    cond = doc["conditions"]

    def table(rows: list[list[str]], head: list[str]) -> str:
        h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"

    cost_rows = []
    for c in doc["cells"]:
        lat, ttft = c.get("edit_latency_ms") or {}, c.get("ttft_ms") or {}
        cost_rows.append(
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
            ]
        )
    quality_rows = [
        [
            c["label"],
            c["device"],
            _fmt(c["quality"]["mean"], 1),
            *(_fmt(c["quality"]["headline"].get(t), 1) for t in tasks),
        ]
        for c in doc["cells"]
    ]
    set_names = sorted({k for c in doc["cells"] for k in c["quality"]["sets"]})
    detail_rows = []
    for c in doc["cells"]:
        for k in set_names:
            scores = c["quality"]["sets"].get(k, {})
            detail_rows.append([c["label"], c["device"], k, ", ".join(f"{m} {v:.2f}" for m, v in scores.items())])

    def para(s: str) -> str:
        s = html.escape(s)
        while "**" in s:
            s = s.replace("**", "<b>", 1).replace("**", "</b>", 1)
        return f"<p>{s}</p>"

    verdict_html = "".join(
        f"<h3>{html.escape(v['device'])}</h3>" + "".join(para(t) for t in v["text"]) for v in verdicts
    )
    budget = verdicts[0]["budget"] if verdicts else {}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgewrite report</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} th{{background:#f3f3f3}} .plots{{display:flex;flex-wrap:wrap;gap:1em}}
.verdict{{background:#f6fbf6;border-left:4px solid #2ca02c;padding:0.5em 1em}} code{{background:#f3f3f3;padding:0 3px}}
</style></head><body>
<h1>edgewrite: is the tuned, quantized model worth shipping?</h1>
<div class="verdict"><h2>Verdict</h2>{verdict_html}
<p>Budget: edit p50 ≤ {budget.get("max_latency_ms") or "∞"} ms, peak RSS ≤ {
        budget.get("max_memory_mb") or "∞"
    } MB.</p></div>
<h2>Quality per task (0-100; F0.5, GLEU, SARI as the field computes them)</h2>
{table(quality_rows, ["artifact", "device", "mean", *tasks])}
<p>Each task's number: {html.escape(headline_sources(doc))}.</p>
<h2>Cost</h2>
{
        table(
            cost_rows,
            [
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
            ],
        )
    }
<h2>Quality against cost (Pareto front in red)</h2>
<div class="plots">{_scatter_svg(doc, "latency", "one-sentence edit latency p50 (ms, log)")}
{_scatter_svg(doc, "memory", "peak RSS (MB, log)")}</div>
<h2>Every evaluation set</h2>
{table(detail_rows, ["artifact", "device", "set", "scores"])}
<h2>Conditions</h2>
<p>{html.escape(cond["cpu"])}, {cond["threads"]} threads, {cond["rows"]} rows ({cond["split"]} split,
up to {cond["limit_per_set"]} per set), commit {html.escape(str(cond.get("commit")))}, created {
        html.escape(doc["created"])
    }.
Command: <code>{html.escape(str(doc.get("command")))}</code>. Versions: {html.escape(json.dumps(cond["versions"]))}.</p>
</body></html>
"""


def _remember_recommendation(verdicts: list[dict]) -> None:
    """`edgewrite assist` and `serve` default to the artifact the last report recommends per device."""
    from edgewrite.models import edgewrite_home

    picks = {v["device"]: v["artifact"] for v in verdicts if v.get("artifact")}
    if picks:
        home = edgewrite_home()
        home.mkdir(parents=True, exist_ok=True)
        (home / "recommended.json").write_text(json.dumps(picks, indent=2) + "\n")


def recommended_artifact(device: str) -> str | None:
    from edgewrite.models import edgewrite_home

    path = edgewrite_home() / "recommended.json"
    if not path.is_file():
        return None
    pick = json.loads(path.read_text()).get(device)
    return pick if pick and (Path(pick) / "manifest.json").is_file() else None


def write_report(
    bench_dir: Path, out: Path | None, max_latency_ms: float | None, max_memory_mb: float | None
) -> tuple[dict, list[dict], Path]:
    doc = load_bench(bench_dir)
    verdicts = verdict(doc, max_latency_ms, max_memory_mb)
    target = out or (bench_dir if bench_dir.is_dir() else bench_dir.parent) / "report.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(render_html(doc, verdicts), encoding="utf-8")
    tmp.replace(target)
    _remember_recommendation(verdicts)
    md = target.with_suffix(".md")
    md.write_text(
        "# edgewrite bench\n\n"
        + markdown_table(doc)
        + "\n\n## Verdict\n\n"
        + "\n\n".join("\n".join(v["text"]) for v in verdicts)
        + "\n",
        encoding="utf-8",
    )
    return doc, verdicts, target
