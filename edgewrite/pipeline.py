"""``edgewrite run``: every stage of a recipe in order, skipping stages whose manifest already matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgewrite.artifacts import fingerprint
from edgewrite.recipe import Recipe

STAGES = ("data", "tune", "merge")


def stage_dirs(recipe: Recipe) -> dict[str, Path]:
    root = recipe.run_dir()
    return {
        "data": root / "data",
        "tune": root / ("adapter" if recipe.train.method == "lora" else "full"),
        "merge": root / "merged",
    }


def run_recipe(recipe: Recipe, force: bool = False, quiet: bool = False, log: Any = print) -> dict[str, Path]:
    from edgewrite.data import build_dataset
    from edgewrite.merge import merge
    from edgewrite.train import resume_state, tune, tune_fingerprint

    dirs = stage_dirs(recipe)

    def announce(stage: str, done_before: bool) -> None:
        log(f"[{stage}] {'up to date' if done_before else 'done'}: {dirs[stage]}")

    def finished(path: Path, fp: str) -> bool:
        import json

        m = path / "manifest.json"
        return m.is_file() and json.loads(m.read_text()).get("fingerprint") == fp

    from edgewrite.data import data_fingerprint

    data_fp = data_fingerprint(recipe.data, Path(recipe.data.data_dir), recipe.train.seed)
    before = finished(dirs["data"], data_fp)
    data_manifest = build_dataset(recipe.data, dirs["data"], seed=recipe.train.seed, force=force)
    announce("data", before)

    tune_fp = tune_fingerprint(recipe.train, recipe.model, data_manifest)
    before = finished(dirs["tune"], tune_fp)
    resume = not before and resume_state(dirs["tune"], tune_fp) is not None
    if resume:
        log(f"[tune] resuming from {resume_state(dirs['tune'], tune_fp)}")
    tune_manifest = tune(
        recipe.train, recipe.model, dirs["data"], dirs["tune"], resume=resume, force=force, quiet=quiet
    )
    announce("tune", before)

    merge_fp = fingerprint({"parent": tune_manifest["fingerprint"], "stage": "merge"})
    before = finished(dirs["merge"], merge_fp)
    merge(dirs["tune"], dirs["merge"], force=force)
    announce("merge", before)

    if recipe.quantize:
        from edgewrite.quantize import check_bits, quantize
        from edgewrite.quantize.settings import Rounding

        for spec in recipe.quantize:  # validate every export before spending time on the first
            if spec.type is None:
                check_bits(spec.format, spec.bits)
            Rounding.parse(spec.rounding).check(spec.format, tensor_types=spec.tensor_types)
        for spec in recipe.quantize:
            path, _ = quantize(
                str(dirs["merge"]),
                spec.format,
                spec.bits,
                gguf_type=spec.type,
                group_size=spec.group_size,
                samples=spec.samples,
                rounding=spec.rounding,
                tensor_types=spec.tensor_types or None,
                force=force,
            )
            dirs[f"quantize:{path.name}"] = path
            log(f"[quantize] done: {path}")
    return dirs
