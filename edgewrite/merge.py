"""Fold a LoRA adapter into its base model; carry tokenizer, chat template and stop token along."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgewrite.artifacts import existing_matches, fingerprint, read_manifest, staged_dir, write_manifest
from edgewrite.errors import EdgewriteError


def merge(adapter_dir: Path, out: Path, force: bool = False) -> dict[str, Any]:
    """Write a full-precision merged model (safetensors) to ``out`` from a tune artifact."""
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
        if manifest["kind"] == "full":
            for f in adapter_dir.iterdir():
                if f.is_file() and f.name != "manifest.json":
                    shutil.copy2(f, tmp / f.name)
            model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32, use_safetensors=True)
        else:
            from peft import PeftModel

            from edgewrite import quiet_gptqmodel

            quiet_gptqmodel()

            model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32, use_safetensors=True)
            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        stop = manifest["stop_token"]
        model.generation_config = stop_generation_config(tokenizer, stop)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for leftover in ("adapter_config.json", "adapter_model.safetensors"):
            (tmp / leftover).unlink(missing_ok=True)
        template = getattr(tokenizer, "chat_template", None) or ""
        result = write_manifest(
            tmp,
            "merged",
            fingerprint=fp,
            format="safetensors",
            dtype="float32",
            parent={"path": str(adapter_dir), "kind": manifest["kind"], "fingerprint": manifest["fingerprint"]},
            base_model=manifest["base_model"],
            data=manifest.get("data"),
            prompt_style=manifest.get("prompt_style", "chat"),
            stop_token=stop,
            chat_template_sha256=fingerprint(template),
            train=manifest.get("train"),
        )
    return result
