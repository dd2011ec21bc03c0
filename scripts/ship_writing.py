"""Ship a recipe run's tuned LoRA adapter inside the package as the `writing` model.

Writes edgewrite/shipped/writing/: the adapter's weights in fp16 (safetensors), its config, and a
manifest with what it is and how good it measured: the recipe (file and sha256), the data fingerprint,
training statistics and the dev selection history, and the dev scores with 95 % intervals of its
merged model and of its 4-bit serving export, copied from a bench run (its rows and command are
recorded with them). `edgewrite models` lists it; assist, serve and generate use it by default
(merged and exported once, on first use).

    python scripts/ship_writing.py runs/writing-smollm2-135m-cpu --recipe recipes/writing-smollm2-135m-cpu.yaml \
        --bench benchmarks/results/bench --serve gguf:IQ4_NL --imatrix   # what made the shipped adapter
    python scripts/ship_writing.py --reserve ~/.cache/edgewrite/models/writing-0a824c2d-gguf-q4_0-ar \
        --rounding runs/writing-ar/rounding.npz --bench benchmarks/results/bench-shipped
        # what it serves now: Q4_0 with the AutoRound rounding of `quantize writing --rounding autoround:200`

Re-running the recipe from a fresh clone rebuilds the same adapter (scripts/reproduce_writing.py
checks the dev scores of a rebuild against these intervals).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


from edgewrite.artifacts import read_manifest, write_manifest  # noqa: E402

TARGET = ROOT / "edgewrite" / "shipped" / "writing"


def _cell(bench: dict, path: str) -> dict | None:
    for c in bench["cells"]:
        if Path(c.get("artifact", "")).resolve() == Path(path).resolve():
            q = c["quality"]
            return {
                "label": c["label"],
                "mean_ci": q.get("mean_ci"),
                "headline_ci": q.get("headline_ci"),
                "headline_source": q.get("headline_source"),
                "rows": bench["conditions"]["rows"],
            }
    return None


def reserve(artifact: Path, bench_dir: Path, rounding: Path | None) -> None:
    shipped = read_manifest(TARGET, kinds=("adapter",))
    made = read_manifest(artifact, kinds=("quantized",))
    settings = made["settings"]
    if made["format"] != "gguf" or not (settings.get("rounding_sha256") or settings.get("imatrix_sha256")):
        _fail(f"{artifact} is not a GGUF export made with --rounding FILE or imatrix:FILE")
    key, name = ("rounding", "rounding.npz") if settings.get("rounding_sha256") else ("imatrix", "imatrix.npz")
    source = artifact / name  # an importance matrix travels inside its export; a rounding file does not
    if key == "rounding":
        if rounding is None or hashlib.sha256(rounding.read_bytes()).hexdigest() != settings["rounding_sha256"]:
            _fail(f"{artifact} was made with `--rounding FILE`: give that file as --rounding (sha256 checked)")
        source = rounding
    bench = json.loads((bench_dir / "bench.json").read_text())
    served = _cell(bench, str(artifact))
    if not served:
        _fail(f"{bench_dir} has no cell for {artifact}; bench it first")
    staging = TARGET.with_name("writing.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(TARGET, staging)
    for old in ("rounding.npz", "imatrix.npz", "manifest.json"):
        (staging / old).unlink(missing_ok=True)
    shutil.copy2(source, staging / name)
    keep = {k: v for k, v in shipped.items() if k not in ("schema", "kind", "created", "versions", "files")}
    keep["dev"] = {**shipped["dev"], "served": served}
    if merged := _cell(bench, made["parent"]["path"]):  # the merge it was exported from, benched beside it
        keep["dev"]["merged"] = merged
    keep["serve"] = {"format": "gguf", "bits": made["bits"], "type": settings["type"], key: name}
    keep["bench"] = {"path": str(bench_dir), "created": bench["created"], "command": bench.get("command")}
    write_manifest(staging, "adapter", **keep)
    shutil.rmtree(TARGET)
    staging.rename(TARGET)
    size = sum(f.stat().st_size for f in TARGET.iterdir()) / 1e6
    print(f"the shipped adapter now serves {artifact} ({size:.1f} MB in all); dev mean {served['mean_ci']}")


def main() -> None:
    import torch
    from safetensors.torch import load_file, save_file

    ap = argparse.ArgumentParser()
    ap.add_argument("run", nargs="?", help="the recipe run folder (with adapter/ and merged/)")
    ap.add_argument("--recipe", help="the recipe the run was made from (not with --reserve)")
    ap.add_argument("--bench", required=True, help="a bench folder that benched the run's merged model and export")
    ap.add_argument(
        "--serve", default="gguf:4", help="format assist and serve use: gguf:4, gguf:Q4_0 (a llama.cpp type), onnx:4"
    )
    ap.add_argument(
        "--imatrix",
        action="store_true",
        help="gguf: the served export was rounded with an importance matrix (the run's gguf-TYPE-imat folder); "
        "its imatrix.npz ships with the adapter so that the user's export rounds the same way",
    )
    ap.add_argument(
        "--reserve",
        metavar="ARTIFACT",
        help="only change what the shipped adapter serves: ARTIFACT, a GGUF export of its merge made with "
        "--rounding FILE or imatrix:FILE; its rounding.npz or imatrix.npz ships instead of the old one, and `serve` "
        "and dev.served (ARTIFACT's cell in --bench; dev.merged too if the bench holds its parent) are "
        "replaced. The adapter and the rest stay as they are.",
    )
    ap.add_argument("--rounding", help="with --reserve: the rounding file ARTIFACT was made with")
    a = ap.parse_args()
    if a.reserve:
        reserve(Path(a.reserve), Path(a.bench), Path(a.rounding) if a.rounding else None)
        return
    if not a.run or not a.recipe:
        _fail("give the recipe run folder and --recipe, or --reserve ARTIFACT")
    run = Path(a.run)
    adapter = read_manifest(run / "adapter", kinds=("adapter",))
    from edgewrite.quantize.gguf import TYPE_FOR_BITS, bits_of_type

    fmt, _, spec = a.serve.partition(":")
    gguf_type = None if spec.isdigit() else spec.upper()
    bits = int(spec) if spec.isdigit() else bits_of_type(gguf_type or "")
    known = (fmt == "gguf" and (gguf_type is not None or bits in TYPE_FOR_BITS)) or (
        fmt == "onnx" and gguf_type is None and bits == 4
    )
    if not known or bits is None:
        _fail(f"--serve {a.serve}: give gguf:BITS, gguf:TYPE (a llama.cpp type such as Q4_0) or onnx:4")
    if a.imatrix and fmt != "gguf":
        _fail("--imatrix applies to a gguf serving format")
    served = f"gguf-{(gguf_type or TYPE_FOR_BITS[bits]).lower()}" if fmt == "gguf" else "onnx-int4"
    served += "-imat" if a.imatrix else ""
    if a.imatrix and not (run / served / "imatrix.npz").is_file():
        _fail(
            f"{run / served} has no imatrix.npz; make it with `edgewrite quantize {run / 'merged'} --rounding imatrix`"
        )
    bench = json.loads((Path(a.bench) / "bench.json").read_text())
    dev = {"merged": _cell(bench, str(run / "merged")), "served": _cell(bench, str(run / served))}
    if not dev["merged"] or not dev["served"]:
        _fail(f"{a.bench} has no cells for {run / 'merged'} and {run / served}; bench them first")
    staging = TARGET.with_name("writing.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    save_file({k: v.to(torch.float16).contiguous() for k, v in weights.items()}, staging / "adapter_model.safetensors")
    shutil.copy2(run / "adapter" / "adapter_config.json", staging / "adapter_config.json")
    if a.imatrix:
        shutil.copy2(run / served / "imatrix.npz", staging / "imatrix.npz")
    train_log = json.loads((run / "adapter" / "train_log.json").read_text())
    recipe_text = Path(a.recipe).read_text()
    write_manifest(
        staging,
        "adapter",
        fingerprint=adapter["fingerprint"],
        format="peft",
        dtype="float16",
        base_model={"ref": "default", "model_type": "llama"},
        recipe={"path": a.recipe, "sha256": hashlib.sha256(recipe_text.encode()).hexdigest()},
        data={"fingerprint": adapter["data"]["fingerprint"]},
        prompt_style=adapter["prompt_style"],
        stop_token=adapter["stop_token"],
        train=adapter["train"],
        stats=adapter["stats"],
        selection=train_log.get("selection"),
        dev=dev,
        serve={
            "format": fmt,
            "bits": bits,
            **({"type": gguf_type} if gguf_type else {}),
            **({"imatrix": "imatrix.npz"} if a.imatrix else {}),
        },
        bench={"path": a.bench, "created": bench["created"], "command": bench.get("command")},
    )
    shutil.rmtree(TARGET, ignore_errors=True)
    staging.rename(TARGET)
    size = sum(f.stat().st_size for f in TARGET.iterdir()) / 1e6
    print(f"shipped {run / 'adapter'} as {TARGET} ({size:.1f} MB); dev mean {dev['served']['mean_ci']}")


if __name__ == "__main__":
    main()
