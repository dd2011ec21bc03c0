"""mix sums LoRA adapters on their files and gives what PEFT's add_weighted_adapter(combination_type="cat")
gives with the base model in memory; the result merges and runs like any tuned adapter."""

import json
from pathlib import Path

import pytest

from edgewrite.artifacts import write_manifest
from edgewrite.errors import EdgewriteError
from edgewrite.merge import merge
from edgewrite.mix import mix, parse_part
from tests.integration.test_merge_streaming import _base, _load


def _adapter(base: Path, out: Path, seed: int, r: int, alpha: int, rslora: bool = False) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        target_modules=["q_proj", "v_proj", "down_proj"],
        init_lora_weights=False,
        use_rslora=rslora,
    )
    get_peft_model(model, config).save_pretrained(out)
    write_manifest(
        out,
        "adapter",
        fingerprint=f"lora-{seed}",
        base_model={"ref": str(base)},
        stop_token="<|im_end|>",
        prompt_style="chat",
    )
    return out


def test_a_mix_is_peft_weighted_cat_and_merges(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = _base(tiny_model_dir, tmp_path / "base", "float32")
    a = _adapter(base, tmp_path / "a", seed=1, r=4, alpha=8)
    b = _adapter(base, tmp_path / "b", seed=2, r=8, alpha=8, rslora=True)
    weights = (0.3, 0.7)
    manifest = mix([(a, weights[0]), (b, weights[1])], tmp_path / "mix")
    assert manifest["kind"] == "adapter" and manifest["train"]["lora_r"] == 12
    assert [p["weight"] for p in manifest["mix"]] == list(weights)
    merge(tmp_path / "mix", tmp_path / "merged")  # a plain LoRA: the streaming merge takes it
    got = _load(tmp_path / "merged")

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(model, a, adapter_name="a")
    peft_model.load_adapter(b, adapter_name="b")
    peft_model.add_weighted_adapter(["a", "b"], list(weights), "ab", combination_type="cat")
    peft_model.set_adapter("ab")
    peft_model.delete_adapter("a")
    peft_model.delete_adapter("b")
    want = peft_model.merge_and_unload().state_dict()
    base_weights = _load(base)
    changed = 0
    for name, tensor in want.items():
        if name in got:
            assert torch.allclose(got[name], tensor, atol=1e-6), name
            changed += not torch.equal(got[name], base_weights[name])
    assert changed == 2 * 3  # q, v and down in each of the two layers


def test_mixing_needs_one_base_and_plain_lora(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = _base(tiny_model_dir, tmp_path / "base", "float32")
    a = _adapter(base, tmp_path / "a", seed=1, r=4, alpha=8)
    b = _adapter(base, tmp_path / "b", seed=2, r=4, alpha=8)
    doc = json.loads((b / "manifest.json").read_text())
    doc["base_model"] = {"ref": "HuggingFaceTB/SmolLM2-360M-Instruct"}
    (b / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(EdgewriteError, match="base model"):
        mix([(a, 0.5), (b, 0.5)], tmp_path / "out")
    config = json.loads((a / "adapter_config.json").read_text())
    (a / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(EdgewriteError, match="not a plain LoRA adapter"):
        mix([(a, 0.5), (a, 0.5)], tmp_path / "out")
    (a / "adapter_config.json").write_text("{not json")
    with pytest.raises(EdgewriteError, match="adapter_config.json is not valid JSON"):
        mix([(a, 0.5), (a, 0.5)], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parts_parse_from_the_command_line() -> None:
    assert parse_part("runs/a/adapter:0.25") == (Path("runs/a/adapter"), 0.25)
    assert parse_part("writing") == (Path("writing"), 1.0)
    assert parse_part("runs/a:b/adapter") == (Path("runs/a:b/adapter"), 1.0)
    with pytest.raises(EdgewriteError, match="not a finite number"):
        parse_part("runs/a:inf")
