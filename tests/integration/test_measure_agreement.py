"""Teacher-forced agreement (`edgewrite.measure.agreement`) on the embedded model: a runtime agrees with
its own greedy answers, llama.cpp running the shipped Q4_1 file agrees with most of what transformers
running its dequantized fp32 weights answers, and answers that are not the model's are found out."""

from pathlib import Path

from edgewrite.measure import agreement
from edgewrite.runtimes.hf import HFRuntime
from edgewrite.tasks import TASKS, build_prompt

TEXTS = {
    "grammar": ["She go to school every days.", "The results was very good , and we is happy ."],
    "simplification": ["The committee deliberated extensively prior to reaching a consensus."],
    "paraphrase": ["The meeting was moved to next Tuesday because of the storm."],
}


def _rows(runtime: HFRuntime) -> list[dict]:
    rows = []
    for task, texts in TEXTS.items():
        for text in texts:
            prompt = build_prompt(runtime.tokenizer, TASKS[task].default_instruction, text)
            (g,) = runtime.generate([prompt], 40)
            rows.append({"task": task, "source": text, "raw_output": g.text})
    return rows


def test_agreement_with_a_parent_s_answers(default_model_dir: Path) -> None:
    from edgewrite.models import default_gguf_path
    from edgewrite.runtimes.llamacpp import LlamaCppRuntime

    hf = HFRuntime(default_model_dir, batch_size=1)
    rows = _rows(hf)
    assert all(r["raw_output"].strip() for r in rows)

    own = agreement(hf, rows, "<|im_end|>")
    assert own["token_agreement"] >= 0.99 and own["answers_kept"] >= 0.75  # its own greedy answers
    assert own["rows"] == 4 and set(own["tasks"]) == set(TEXTS) and own["answer_tokens"] > 4 * 3

    cpp = LlamaCppRuntime(default_model_dir, str(default_gguf_path()), "<|im_end|>", threads=2)
    try:
        export = agreement(cpp, rows, "<|im_end|>")  # one teacher-forced pass per row
    finally:
        cpp.close()
    # The Q4_1 file and its dequantized weights are one function up to kernel rounding.
    assert export["token_agreement"] >= 0.9 and export["answer_tokens"] == own["answer_tokens"]

    # Measured (AMD EPYC): own 1.0 / 1.0 kept, export 1.0 / 1.0, scrambled 0.04 / 0 kept, NLL 7.4.
    scrambled = [{**r, "raw_output": " ".join(reversed(r["raw_output"].split()))} for r in rows]
    wrong = agreement(hf, scrambled, "<|im_end|>")
    assert wrong["token_agreement"] < 0.6 and wrong["answers_kept"] == 0 and wrong["nll"] > own["nll"] + 1
