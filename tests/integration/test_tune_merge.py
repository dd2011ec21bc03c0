import json
from pathlib import Path

import pytest
import torch

from edgewrite.data import build_dataset
from edgewrite.errors import EdgewriteError
from edgewrite.merge import merge
from edgewrite.recipe import load_recipe
from edgewrite.train import encode_rows, tune


@pytest.fixture()
def tiny_run(tiny_recipe: Path):
    recipe = load_recipe(tiny_recipe)
    data_dir = recipe.run_dir() / "data"
    build_dataset(recipe.data, data_dir, seed=recipe.train.seed)
    return recipe, data_dir


def test_labels_cover_only_the_response_and_its_stop_token(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    row = {"instruction": "Fix grammar", "source": "She go .", "references": ["She goes ."]}
    (enc,), dropped = encode_rows([row], tok, "chat", 256)
    answer = [t for t, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab != -100]
    assert tok.decode(answer) == "She goes .<|im_end|>"
    assert "She go ." in tok.decode(enc["input_ids"]) and dropped == 0
    assert encode_rows([row], tok, "chat", 8) == ([], 1)


def test_lora_tune_then_merge_gives_the_same_logits(tiny_run) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    recipe, data_dir = tiny_run
    adapter = recipe.run_dir() / "adapter"
    manifest = tune(recipe.train, recipe.model, data_dir, adapter, quiet=True)
    assert manifest["kind"] == "adapter" and manifest["stats"]["steps"] == 4
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "checkpoints").exists()
    assert not adapter.with_name("adapter.partial").exists()

    merged = recipe.run_dir() / "merged"
    m = merge(adapter, merged)
    assert m["kind"] == "merged" and m["stop_token"] == "<|im_end|>"
    ids = torch.tensor([[1, 42, 77, 300, 5, 9]])
    base = AutoModelForCausalLM.from_pretrained(recipe.model, dtype=torch.float32)
    with torch.no_grad():
        want = PeftModel.from_pretrained(base, adapter).eval()(ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()(ids).logits
        untuned = AutoModelForCausalLM.from_pretrained(recipe.model, dtype=torch.float32).eval()(ids).logits
    assert torch.allclose(want, got, atol=1e-4)
    assert not torch.allclose(want, untuned, atol=1e-4), "the adapter must change the model"
    gen = json.loads((merged / "generation_config.json").read_text())
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged)
    assert gen["eos_token_id"] == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.chat_template and not (merged / "adapter_config.json").exists()


def _losses(out: Path) -> dict[int, float]:
    log = json.loads((out / "train_log.json").read_text())["log_history"]
    return {e["step"]: e["loss"] for e in log if "loss" in e}


def test_resume_continues_to_the_same_loss_curve(tiny_run, tmp_path: Path) -> None:
    recipe, data_dir = tiny_run
    tune(recipe.train, recipe.model, data_dir, tmp_path / "straight", quiet=True)
    out = tmp_path / "interrupted"
    with pytest.raises(EdgewriteError, match="no checkpoint saved yet"):
        tune(recipe.train, recipe.model, data_dir, out, resume=True, quiet=True)
    _run_until(recipe.train, recipe.model, data_dir, out, stop_after=2)
    resumed = tune(recipe.train, recipe.model, data_dir, out, resume=True, quiet=True)
    assert resumed["stats"]["resumed_from"] == "checkpoint-2" and resumed["stats"]["steps"] == 4
    straight, continued = _losses(tmp_path / "straight"), _losses(out)
    assert set(continued) >= {3, 4}
    for step in (3, 4):
        assert continued[step] == pytest.approx(straight[step], abs=1e-4)


def _run_until(cfg, model, data_dir: Path, out: Path, stop_after: int) -> None:
    """Run tune and kill it (by an exception from a callback) right after step ``stop_after``."""
    import transformers

    class Stop(Exception):
        pass

    original = transformers.Trainer._save_checkpoint

    def save_then_stop(self, *a, **kw):
        original(self, *a, **kw)
        if self.state.global_step >= stop_after:
            raise Stop

    transformers.Trainer._save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            tune(cfg, model, data_dir, out, quiet=True)
    finally:
        transformers.Trainer._save_checkpoint = original
    assert not out.exists() and out.with_name(out.name + ".partial").is_dir()


def test_full_fine_tune_and_merge(tiny_run) -> None:
    recipe, data_dir = tiny_run
    cfg = recipe.train.model_copy(update={"method": "full", "max_steps": 2, "lr": 1e-4})
    out = recipe.run_dir() / "full"
    assert tune(cfg, recipe.model, data_dir, out, quiet=True)["kind"] == "full"
    m = merge(out, recipe.run_dir() / "merged-full")
    assert m["parent"]["kind"] == "full" and (recipe.run_dir() / "merged-full" / "model.safetensors").is_file()


def test_merge_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(EdgewriteError, match="no manifest.json"):
        merge(tmp_path, tmp_path / "out")
