"""The two fixes around onnxruntime-genai's builder that a second family (Gemma 3) needed."""

import json
from pathlib import Path
from types import SimpleNamespace

from edgewrite.quantize.genai_builder import flatten_layer_type_rope
from edgewrite.quantize.onnx import _drop_null_tokenizer_fields


def test_per_layer_type_rope_is_put_where_the_builder_reads_it() -> None:
    config = SimpleNamespace(
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        }
    )
    assert flatten_layer_type_rope(config)
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 1_000_000.0}
    # the global layers keep Gemma 3's 1e6 (the builder's fallback without it is 10000), the local ones 1e4
    assert config.rope_theta == 1_000_000.0 and config.rope_local_base_freq == 10_000.0


def test_a_flat_rope_config_is_left_alone() -> None:
    flat = {"rope_type": "llama3", "rope_theta": 500_000.0, "factor": 32.0}
    config = SimpleNamespace(rope_parameters=dict(flat))
    assert not flatten_layer_type_rope(config)
    assert config.rope_parameters == flat and not hasattr(config, "rope_local_base_freq")
    assert not flatten_layer_type_rope(SimpleNamespace())


def test_null_tokenizer_fields_are_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({"chat_template": None, "eos_token": "<eos>", "model_max_length": 512}))
    _drop_null_tokenizer_fields(path)
    assert json.loads(path.read_text()) == {"eos_token": "<eos>", "model_max_length": 512}
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer_config.json"]
