"""merge folds a LoRA adapter into the base shard by shard, in the base's own dtype (a 7B model in float32
is 28 GB: more than a laptop holds), and gives what PEFT's merge_and_unload gives."""

import json
from pathlib import Path

import pytest

from edgewrite.artifacts import write_manifest
from edgewrite.errors import EdgewriteError
from edgewrite.merge import merge


def _base(tiny_model_dir: Path, out: Path, dtype: str, shard: str | None = None) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=getattr(torch, dtype))
    model.save_pretrained(out, max_shard_size=shard) if shard else model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def _adapter(base: Path, out: Path, seed: int = 0) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    write_manifest(out, "adapter", fingerprint=f"lora-{seed}", base_model={"ref": str(base)}, stop_token="<|im_end|>")
    return out


def _peft_merge(base: Path, adapter: Path) -> dict:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return {k: v.float() for k, v in PeftModel.from_pretrained(model, adapter).merge_and_unload().state_dict().items()}


def _load(folder: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_merge_keeps_the_base_dtype_and_matches_peft(tiny_model_dir: Path, tmp_path: Path, dtype: str) -> None:
    import torch

    base = _base(tiny_model_dir, tmp_path / "base", dtype, shard="300KB")  # several shards and an index
    adapter = _adapter(base, tmp_path / "adapter")
    manifest = merge(adapter, tmp_path / "merged")
    assert manifest["dtype"] == dtype
    shards = sorted(p.name for p in base.glob("*.safetensors"))
    assert len(shards) > 1 and sorted(p.name for p in (tmp_path / "merged").glob("*.safetensors")) == shards
    assert (tmp_path / "merged" / "model.safetensors.index.json").is_file()
    got, want = _load(tmp_path / "merged"), _peft_merge(base, adapter)
    assert all(t.dtype == getattr(torch, dtype) for t in got.values())
    tolerance = 0.0 if dtype == "float32" else 2**-7  # bf16 keeps 8 bits of mantissa
    for name, tensor in want.items():
        if name in got:
            assert torch.allclose(got[name].float(), tensor, rtol=tolerance, atol=1e-6), name
    changed = [n for n in got if "q_proj" in n or "v_proj" in n or "down_proj" in n]
    assert changed and not torch.equal(got[changed[0]].float(), _load(base)[changed[0]].float())
    gen = json.loads((tmp_path / "merged" / "generation_config.json").read_text())
    assert gen["eos_token_id"] is not None  # the stop token travels with the merge


def test_an_adapter_for_another_base_is_named_by_tensor(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    base = _base(tiny_model_dir, tmp_path / "base", "float32")
    adapter = _adapter(base, tmp_path / "adapter")
    other = tmp_path / "other"
    config = LlamaConfig.from_pretrained(base)
    config.intermediate_size *= 2  # down_proj takes a wider input here
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    for f in base.glob("tokenizer*"):
        (other / f.name).write_bytes(f.read_bytes())
    (other / "chat_template.jinja").write_bytes((base / "chat_template.jinja").read_bytes())
    doc = json.loads((adapter / "manifest.json").read_text())
    doc["base_model"] = {"ref": str(other)}
    (adapter / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(EdgewriteError, match=r"down_proj\.weight is \(64, 256\) in the base"):
        merge(adapter, tmp_path / "merged")
    assert not (tmp_path / "merged").exists() and not (tmp_path / "merged.partial").exists()


def test_a_truncated_or_missing_shard_is_named_before_anything_is_trusted(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = _base(tiny_model_dir, tmp_path / "base", "bfloat16", shard="300KB")
    adapter = _adapter(base, tmp_path / "adapter")
    shards = sorted(base.glob("model-*.safetensors"))
    cut = shards[-1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with pytest.raises(EdgewriteError, match=f"{cut.name} is not a complete safetensors file"):
        merge(adapter, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()  # nothing half written where a later command would trust it
    cut.unlink()
    with pytest.raises(EdgewriteError, match=f"missing shard.*{cut.name}"):
        merge(adapter, tmp_path / "merged")
