"""A weighted sum of LoRA adapters of one base model, as one LoRA adapter ("model soup", task arithmetic).

The sum is exact: the adapters' A matrices, each scaled by its weight and its own alpha / r, are stacked, and
their B matrices set side by side, so that B @ A = sum_i w_i * (alpha_i / r_i) * B_i @ A_i with rank sum(r_i)
and scaling 1. That is PEFT's ``add_weighted_adapter(..., combination_type="cat")``; it is done here on the
adapter files because PEFT's version needs the base model in memory (32 GB in float32 for an 8B model) to
combine tensors that never touch it. tests/unit/test_mix.py checks it against PEFT's.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, read_manifest, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError


def parse_part(text: str) -> tuple[Path, float]:
    """``FOLDER:WEIGHT`` (or ``FOLDER``, weight 1) from the command line."""
    folder, sep, weight = text.rpartition(":")
    if not sep or not folder:
        return Path(text), 1.0
    try:
        value = float(weight)
    except ValueError:
        return Path(text), 1.0  # a path with a colon and no weight
    if not math.isfinite(value):
        raise EdgewriteError(
            f"weight {weight!r} in {text!r} is not a finite number; give FOLDER:WEIGHT, e.g. runs/a:0.5"
        )
    return Path(folder), value


def _shipped(folder: Path) -> Path:
    """'writing' names the shipped adapter, as everywhere a model is taken."""
    from edgewrite.models import WRITING, shipped_adapter

    if str(folder) == WRITING and not folder.exists():
        return shipped_adapter(WRITING)
    return folder


def _lora(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from edgewrite.merge import _plain_lora

    manifest = read_manifest(folder, kinds=("adapter",))
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (folder / name).is_file():
            raise EdgewriteError(f"{folder} has no {name}: its tune did not finish or wrote a full model; tune again")
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewriteError(f"{folder / 'adapter_config.json'} is not valid JSON; tune again") from e
    if not _plain_lora(folder):
        raise EdgewriteError(
            f"{folder} is not a plain LoRA adapter (DoRA, per-layer ranks, extra trained modules or a bias): "
            "only plain LoRA adapters can be summed; merge it on its own"
        )
    return manifest, config


def mix(parts: list[tuple[Path, float]], out: Path, force: bool = False) -> dict[str, Any]:
    """Write to ``out`` the adapter whose update is the weighted sum of the given adapters' updates."""
    if len(parts) < 2:
        raise EdgewriteError("give at least two adapters to mix, as FOLDER:WEIGHT, e.g. writing:0.5 runs/b/adapter:0.5")
    parts = [(_shipped(p), w) for p, w in parts]
    loaded = [(p, w, *_lora(p)) for p, w in parts]
    first_path, _, first, first_config = loaded[0]
    for path, _, manifest, config in loaded[1:]:
        for key, what in (("base_model", "base model"), ("prompt_style", "prompt style"), ("stop_token", "stop token")):
            a, b = first.get(key), manifest.get(key)
            if key == "base_model":
                a, b = (a or {}).get("ref"), (b or {}).get("ref")
            if a != b:
                raise EdgewriteError(
                    f"{path} was tuned with {what} {b!r}, {first_path} with {a!r}: only adapters of one base model, "
                    "prompt style and stop token can be mixed"
                )
        if set(config["target_modules"]) != set(first_config["target_modules"]):
            raise EdgewriteError(
                f"{path} adapts {sorted(config['target_modules'])}, {first_path} "
                f"{sorted(first_config['target_modules'])}: mix adapters that adapt the same modules"
            )
    fp = fingerprint({"stage": "mix", "parts": [(m["fingerprint"], w) for _, w, m, _ in loaded]})
    if existing_matches(out, fp, force):
        return read_manifest(out)

    import torch
    from safetensors.torch import load_file, save_file

    tensors = [load_file(str(p / "adapter_model.safetensors")) for p, *_ in loaded]
    keys = set(tensors[0])
    for (path, *_), t in zip(loaded[1:], tensors[1:], strict=True):
        if set(t) != keys:
            raise EdgewriteError(f"{path} has other LoRA tensors than {first_path}: mix adapters of one architecture")
    mixed: dict[str, torch.Tensor] = {}
    for key in sorted(k for k in keys if ".lora_A." in k):
        key_b = key.replace(".lora_A.", ".lora_B.")
        a_parts, b_parts = [], []
        for (_, weight, _, config), t in zip(loaded, tensors, strict=True):
            r = config["r"]
            scale = config["lora_alpha"] / (r**0.5 if config.get("use_rslora") else r)
            a_parts.append(t[key].float() * (weight * scale))
            b_parts.append(t[key_b].float())
        mixed[key] = torch.cat(a_parts, dim=0).contiguous()
        mixed[key_b] = torch.cat(b_parts, dim=1).contiguous()
    dtypes = {t.dtype for t in tensors[0].values()}  # the adapters' own dtype (bf16 halves the file)
    if len(dtypes) == 1 and all({v.dtype for v in t.values()} == dtypes for t in tensors[1:]):
        dtype = dtypes.pop()
        mixed = {k: v.to(dtype) for k, v in mixed.items()}
    rank = sum(config["r"] for *_, config in loaded)
    config = {
        **first_config,
        "r": rank,
        "lora_alpha": rank,
        "use_rslora": False,
        "rank_pattern": {},
        "alpha_pattern": {},
    }
    with staged_dir(out) as tmp:
        save_file(mixed, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
            if (first_path / name).is_file():
                shutil.copy2(first_path / name, tmp / name)
        return write_manifest(
            tmp,
            "adapter",
            fingerprint=fp,
            format="peft",
            base_model=first["base_model"],
            prompt_style=first.get("prompt_style", "chat"),
            stop_token=first["stop_token"],
            mix=[{"path": str(p), "fingerprint": m["fingerprint"], "weight": w} for p, w, m, _ in loaded],
            train={"method": "lora", "lora_r": rank, "lora_alpha": rank, "mixed_from": len(loaded)},
        )
