"""Break an export and watch the equivalence check fail: on the embedded SmolLM2-135M (real weights: sharp
attention, trained norms, RoPE base 100,000), a GGUF made through the converter must agree with the fp32
parent's own answers token by token (teacher-forced over the whole answer, `measure.agreement`), and each
defect a converter can introduce (Q/K rows out of rotary order, norm weights dropped, the wrong RoPE base, one
tensor at the wrong scale) must fall far below that.

Measured (AMD EPYC, 2 threads, 12 answers of up to 48 tokens, F16 GGUF; token agreement / answers kept
whole): clean 0.995 / 0.917; Q/K rows out of rotary order 0.000 / 0.00; norms dropped 0.000 / 0.00; RoPE base
10,000 instead of 100,000 0.887 / 0.17; layer 3's down_proj at twice its scale 0.903 / 0.33. The check
(TOKENS_MIN 0.97, KEPT_MIN 0.75) sits between the clean export and the mildest defect.
"""

import json
import shutil
from pathlib import Path

import pytest

from edgewrite.measure import agreement
from edgewrite.runtimes import load_runtime
from edgewrite.runtimes.hf import HFRuntime
from edgewrite.tasks import TASKS, build_prompt

TEXTS = {
    "grammar": [
        "She go to school every days.",
        "The results was very good , and we is happy .",
        "He don't know where is the station.",
    ],
    "simplification": [
        "The committee deliberated extensively prior to reaching a consensus.",
        "Notwithstanding the inclement weather, the expedition proceeded as scheduled.",
    ],
    "paraphrase": [
        "The meeting was moved to next Tuesday because of the storm.",
        "Our team finished the project two weeks ahead of schedule.",
    ],
    "clarity": [
        "In my opinion I think that the plan it is not good enough for us.",
        "The reason why the results are different is because of the fact that the data changed.",
    ],
    "fluency": [
        "Yesterday I have went to the market for buy some apple.",
        "Me and my friend goes to cinema every weekends.",
    ],
    "neutralization": ["The brilliant senator gave yet another inspiring speech."],
}
# The check: an export passes when it agrees on at least TOKENS_MIN of the parent's answer tokens and
# reproduces at least KEPT_MIN of its answers whole.
TOKENS_MIN, KEPT_MIN = 0.97, 0.75


@pytest.fixture(scope="module")
def parent_rows(default_model_dir: Path) -> list[dict]:
    hf = HFRuntime(default_model_dir, batch_size=1)
    rows = []
    for task, texts in TEXTS.items():
        for text in texts:
            prompt = build_prompt(hf.tokenizer, TASKS[task].default_instruction, text)
            (g,) = hf.generate([prompt], 48)
            rows.append({"task": task, "source": text, "raw_output": g.text, "finish": g.finish})
    return rows


def _defect(name: str, tensors: dict, config: dict) -> None:
    import torch

    heads, kv, head = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    for key in list(tensors):
        t = tensors[key]
        if name == "qk-order" and key.endswith(("q_proj.weight", "k_proj.weight")):
            n = heads if "q_proj" in key else kv
            tensors[key] = t.view(n, head, -1).flip(1).reshape(t.shape)  # rows of each head out of rotary order
        elif name == "norm-dropped" and key.endswith("norm.weight"):
            tensors[key] = torch.ones_like(t)
        elif name == "scale" and key == "model.layers.3.mlp.down_proj.weight":
            tensors[key] = t * 2
    if name == "rope-base":
        config["rope_parameters"]["rope_theta"] = 10000.0


def _export(default_model_dir: Path, root: Path, defect: str | None) -> Path:
    from safetensors.torch import load_file, save_file

    from edgewrite.quantize import quantize

    folder = root / (defect or "clean")
    shutil.copytree(default_model_dir, folder, ignore=shutil.ignore_patterns("manifest.json"))
    if defect:
        config = json.loads((folder / "config.json").read_text())
        tensors = load_file(str(folder / "model.safetensors"))
        _defect(defect, tensors, config)
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        (folder / "config.json").write_text(json.dumps(config))
    path, _ = quantize(str(folder), "gguf", 16, out=root / f"{defect or 'clean'}-gguf")
    shutil.rmtree(folder)
    return path


@pytest.mark.parametrize("defect", [None, "qk-order", "norm-dropped", "rope-base", "scale"])
def test_the_equivalence_check_passes_the_real_export_and_fails_each_defect(
    defect: str | None, parent_rows: list[dict], default_model_dir: Path, tmp_path: Path
) -> None:
    export = _export(default_model_dir, tmp_path, defect)
    runtime, manifest = load_runtime(export, threads=2, batch_size=1)
    try:
        found = agreement(runtime, parent_rows, manifest["stop_token"])
    finally:
        runtime.close()
    print(f"{defect or 'clean'}: token agreement {found['token_agreement']:.3f}, kept {found['answers_kept']}")
    passes = found["token_agreement"] >= TOKENS_MIN and found["answers_kept"] >= KEPT_MIN
    assert passes == (defect is None), found
