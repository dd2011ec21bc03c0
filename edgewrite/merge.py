"""Fold a LoRA adapter into its base model; carry tokenizer, chat template and stop token along."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, read_manifest, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError


def merge(adapter_dir: Path, out: Path, force: bool = False) -> dict[str, Any]:
    """Write the merged model (safetensors, the base's dtype and shards) to ``out`` from a tune artifact."""
    if adapter_dir.is_dir() and not (adapter_dir / "manifest.json").exists():
        raise EdgewriteError(
            f"{adapter_dir} has no manifest.json, so edgewrite cannot tell which base model it belongs to; "
            "give the folder that `edgewrite tune` wrote"
        )
    manifest = read_manifest(adapter_dir, kinds=("adapter", "full"))
    fp = fingerprint({"parent": manifest["fingerprint"], "stage": "merge"})
    if existing_matches(out, fp, force):
        return read_manifest(out)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edgewrite.models import resolve_model, stop_generation_config

    base = resolve_model(manifest["base_model"]["ref"])
    # A shipped adapter carries no tokenizer: it is the base model's (LoRA does not touch it).
    has_tokenizer = (adapter_dir / "tokenizer.json").is_file() or (adapter_dir / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if has_tokenizer else base.path)
    with staged_dir(out) as tmp:
        stop = manifest["stop_token"]
        streamed = manifest["kind"] == "adapter" and _plain_lora(adapter_dir)
        if streamed:  # tensor by tensor, shard by shard, in the base's own dtype
            preflight(base.path, out)
            dtype = merge_lora_streaming(base.path, adapter_dir, tmp)
            stop_generation_config(tokenizer, stop).save_pretrained(tmp)
        elif manifest["kind"] == "full":
            for f in adapter_dir.iterdir():
                if f.is_file() and f.name != "manifest.json":
                    shutil.copy2(f, tmp / f.name)
            model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, use_safetensors=True)
        else:  # DoRA, extra trained modules, per-layer ranks: PEFT's own merge, in float32
            from peft import PeftModel

            from edgewrite import quiet_gptqmodel

            quiet_gptqmodel()

            model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32, use_safetensors=True)
            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        if not streamed:
            model.generation_config = stop_generation_config(tokenizer, stop)
            model.save_pretrained(tmp)
            dtype = "float32"
        tokenizer.save_pretrained(tmp)
        for leftover in ("adapter_config.json", "adapter_model.safetensors"):
            (tmp / leftover).unlink(missing_ok=True)
        template = getattr(tokenizer, "chat_template", None) or ""
        result = write_manifest(
            tmp,
            "merged",
            fingerprint=fp,
            format="safetensors",
            dtype=dtype,
            parent={"path": str(adapter_dir), "kind": manifest["kind"], "fingerprint": manifest["fingerprint"]},
            base_model=manifest["base_model"],
            data=manifest.get("data"),
            prompt_style=manifest.get("prompt_style", "chat"),
            stop_token=stop,
            chat_template_sha256=fingerprint(template),
            train=manifest.get("train"),
            **({"custom_tasks": manifest["custom_tasks"]} if manifest.get("custom_tasks") else {}),
        )
    return result


def _plain_lora(adapter_dir: Path) -> bool:
    """A LoRA adapter whose merge is W + (alpha / r) * B @ A on each target weight and nothing else."""
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file() or not (adapter_dir / "adapter_model.safetensors").is_file():
        return False
    config = json.loads(config_path.read_text())
    extras = (
        "use_dora",
        "modules_to_save",
        "rank_pattern",
        "alpha_pattern",
        "fan_in_fan_out",
        "trainable_token_indices",
    )
    return (
        config.get("peft_type", "LORA") == "LORA"
        and config.get("bias", "none") == "none"
        and not any(config.get(key) for key in extras)
    )


def _shards(model_dir: Path) -> list[Path]:
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [n for n in names if not (model_dir / n).is_file()]
        if missing:
            raise EdgewriteError(f"{model_dir} is missing shard(s) {', '.join(missing)} named by its index")
        return [model_dir / n for n in names]
    single = model_dir / "model.safetensors"
    if not single.is_file():
        raise EdgewriteError(f"{model_dir} has no model.safetensors (or index): not a safetensors model folder")
    return [single]


def preflight(model_dir: Path, out: Path) -> None:
    """Refuse, before any work, a merge this machine cannot hold: the largest shard twice in memory (read
    and merged), the whole model on the output's disk."""
    import psutil

    shards = _shards(model_dir)
    need_ram = 2 * max(s.stat().st_size for s in shards) + 512 * 2**20
    have_ram = psutil.virtual_memory().available
    if need_ram > have_ram:
        raise EdgewriteError(
            f"merge needs about {need_ram / 2**30:.1f} GiB of free memory (the largest shard twice), "
            f"this machine has {have_ram / 2**30:.1f}; re-shard the base into smaller files or free memory"
        )
    need_disk = sum(s.stat().st_size for s in shards)
    folder = out.parent if out.parent.exists() else Path(".")
    have_disk = shutil.disk_usage(folder).free
    if need_disk > have_disk:
        raise EdgewriteError(
            f"the merged model needs {need_disk / 2**30:.1f} GiB on disk, {folder} has {have_disk / 2**30:.1f} free; "
            "give --out on a larger disk"
        )


def _open_shard(safe_open: Any, shard: Path) -> Any:
    """A base shard opened for reading; a truncated or corrupt one is named, not a traceback."""
    try:
        return safe_open(str(shard), "pt")
    except Exception as e:  # safetensors raises its own SafetensorError (not an OSError) for a bad header
        raise EdgewriteError(
            f"{shard} is not a complete safetensors file ({e}); the download or copy was cut short: fetch it again"
        ) from e


def merge_lora_streaming(base_dir: Path, adapter_dir: Path, out: Path) -> str:
    """Fold a plain LoRA adapter into the base's safetensors one shard at a time: W + (alpha/r) * B @ A in
    float32, stored back in W's dtype, every other tensor copied as it is; the shard layout and its index
    are kept. Returns the dtype written. Peak memory: one shard, its merged copy, and the adapter."""
    import math

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    r, alpha = config["r"], config["lora_alpha"]
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    lora = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, tuple[Any, Any]] = {}
    for key, a in lora.items():
        if ".lora_A." not in key:
            continue
        name = key.split(".lora_A.")[0].removeprefix("base_model.model.") + ".weight"
        pairs[name] = (a, lora[key.replace(".lora_A.", ".lora_B.")])
    done, dtypes = set(), set()
    for shard in _shards(base_dir):
        tensors = {}
        with _open_shard(safe_open, shard) as f:
            metadata = f.metadata() or {}
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                weight = f.get_tensor(name)
                dtypes.add(str(weight.dtype).removeprefix("torch."))
                if name in pairs:
                    a, b = pairs[name]
                    delta = b.float() @ a.float()
                    if delta.shape != weight.shape:
                        raise EdgewriteError(
                            f"the adapter does not fit this base: {name} is {tuple(weight.shape)} in the base, "
                            f"the adapter's update is {tuple(delta.shape)}; give the base it was tuned on"
                        )
                    weight = (weight.float() + delta * scale).to(weight.dtype)
                    done.add(name)
                tensors[name] = weight.contiguous()
        save_file(tensors, str(out / shard.name), metadata={"format": "pt", **metadata})
        del tensors
    if missing := sorted(set(pairs) - done):
        raise EdgewriteError(
            f"the adapter does not fit this base: it changes {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + ", which the base does not have; give the base it was tuned on"
        )
    for name in ("config.json", "model.safetensors.index.json"):
        if (base_dir / name).is_file():
            shutil.copy2(base_dir / name, out / name)
    return dtypes.pop() if len(dtypes) == 1 else "mixed"
