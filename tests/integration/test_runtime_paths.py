"""The shipped runtime paths: a GGUF runtime without torch, its chat template rendered exactly as
transformers renders it, and copy-speculation that changes speed, not output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgewrite.tasks import PROMPT_STYLES, TASK_NAMES, TASKS, build_prompt, stop_text

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.parametrize("style", [s for s in PROMPT_STYLES if s != "alpaca"])
def test_chat_template_renders_and_tokenizes_as_transformers(default_model_dir: Path, style: str) -> None:
    from transformers import AutoTokenizer

    from edgewrite.runtimes.chat import ChatTokenizer

    hf, ours = AutoTokenizer.from_pretrained(default_model_dir), ChatTokenizer(default_model_dir)
    texts = ["She go to school every days.", "Ünïcödé — “quotes” and emoji 🙂 in a sentence.", "x"]
    for task in TASK_NAMES:
        for instruction in TASKS[task].instructions[:3]:
            for text in texts:
                want, got = build_prompt(hf, instruction, text, style), build_prompt(ours, instruction, text, style)
                assert got == want
                assert (
                    ours(got, add_special_tokens=False)["input_ids"] == hf(want, add_special_tokens=False)["input_ids"]
                )
    assert stop_text(ours, style) == stop_text(hf, style) == "<|im_end|>"
    assert ours.bos_token_id == hf.bos_token_id and ours.eos_token == hf.eos_token


def test_a_missing_or_broken_template_says_re_export(tmp_path: Path, default_model_dir: Path) -> None:
    import shutil

    from edgewrite.errors import EdgewriteError
    from edgewrite.runtimes.chat import ChatTokenizer

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(default_model_dir / name, tmp_path / name)
    with pytest.raises(EdgewriteError, match="no chat template; re-export"):
        ChatTokenizer(tmp_path).apply_chat_template([{"role": "user", "content": "hi"}])
    (tmp_path / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content | nosuchfilter }}{% endfor %}")
    with pytest.raises(EdgewriteError, match="does not render.*re-export"):
        ChatTokenizer(tmp_path).apply_chat_template([{"role": "user", "content": "hi"}])


def test_assist_on_a_gguf_artifact_never_imports_torch(default_gguf: Path, tmp_path: Path) -> None:
    doc = tmp_path / "note.md"
    doc.write_text("# Title\n\nShe go to school every days.\n")
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['edgewrite', 'assist', {str(doc)!r}, '--model', {str(default_gguf)!r}, '-q',"
        f" '--out', {str(tmp_path / 'out.md')!r}]\n"
        "try:\n    runpy.run_module('edgewrite.cli', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('MODULES', 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MODULES False False" in done.stdout
    out = (tmp_path / "out.md").read_text()
    assert out.startswith("# ") and out.count("\n\n") == 1  # the markdown structure is kept


def _dev_rows(n_per_task: int) -> list[tuple[str, str]]:
    from edgewrite.evaluate import gather

    sets = gather(DATA, None, "dev", n_per_task, headline_only=True)
    return [(s.spec.task, r["source"]) for s in sets for r in s.rows]


@pytest.mark.skipif(not DATA.is_dir(), reason=f"dev data not found at {DATA}")
def test_copy_speculation_gives_greedy_decoding_s_output(default_gguf: Path) -> None:
    """On real dev rows, with and without drafts copied from the source, the outputs are the same, except
    where greedy decoding itself sits on a near-tie: llama.cpp evaluates a batch of k+1 tokens with other
    kernels than k single tokens, which can flip an argmax whose top-2 margin is within rounding."""
    from edgewrite.runtimes import load_runtime
    from edgewrite.runtimes.llamacpp import DRAFT_TOKENS

    rt, manifest = load_runtime(default_gguf, threads=2)
    same = 0
    rows = _dev_rows(3)
    for task, src in rows:
        prompt = build_prompt(rt.tokenizer, TASKS[task].default_instruction, src, manifest["prompt_style"])
        limit = min(48, len(rt.tokenize(src)) + 8)
        rt.draft_tokens = 0
        (plain,) = rt.generate([prompt], limit)
        rt.draft_tokens = DRAFT_TOKENS  # with the opening draft in the prompt's pass (the default)
        (spec,) = rt.generate([prompt], limit, sources=[src])
        if spec.text == plain.text:
            same += 1
            assert spec.finish == plain.finish and spec.new_tokens == plain.new_tokens
            continue
        a, b = rt.tokenize(plain.text), rt.tokenize(spec.text)
        i = next(k for k in range(min(len(a), len(b))) if a[k] != b[k])
        logits = rt.next_token_logits(rt.tokenize(prompt) + a[:i])
        top = sorted(logits, reverse=True)
        assert top[0] - top[1] < 0.5, f"{task}: outputs differ at token {i} without a near-tie"
    assert same >= 0.8 * len(rows), f"only {same} of {len(rows)} identical"


def test_several_prompts_decode_together_like_one_at_a_time(default_gguf: Path) -> None:
    from edgewrite.runtimes import load_runtime

    rt, manifest = load_runtime(default_gguf, threads=2)
    prompts = [
        build_prompt(rt.tokenizer, TASKS["grammar"].default_instruction, t, manifest["prompt_style"])
        for t in ("She go to school.", "He have two cat.", "They was late.", "I likes tea.", "We goes home.")
    ]
    together = rt.generate(prompts, 24)  # sequences of one batch, the common prefix shared
    alone = [rt.generate([p], 24)[0] for p in prompts]
    assert sum(x.text == y.text for x, y in zip(together, alone, strict=True)) >= 4
    assert all(g.finish in ("stop", "length") and g.prompt_tokens > 10 for g in together)
    stats = json.loads(json.dumps([g.__dict__ for g in together]))
    assert all(s["ttft_s"] > 0 for s in stats)


def test_continuous_batching_refills_slots_within_the_kv_budget(default_gguf: Path) -> None:
    """Two slots for five prompts, in a context that holds only about three sequences: a finished
    sequence's slot and cells go to the next prompt, no sequence is cut short, outputs match decoding
    each prompt alone."""
    from edgewrite.artifacts import read_manifest
    from edgewrite.runtimes.llamacpp import LlamaCppRuntime

    manifest = read_manifest(default_gguf)
    texts = ("She go to school.", "He have two cat.", "They was late.", "I likes tea.", "We goes home.")

    def runtime(n_ctx: int, parallel: int) -> LlamaCppRuntime:
        return LlamaCppRuntime(
            default_gguf,
            manifest["details"]["gguf_file"],
            manifest["stop_token"],
            threads=2,
            n_ctx=n_ctx,
            parallel=parallel,
        )

    small = runtime(160, 4)
    grammar, style = TASKS["grammar"].default_instruction, manifest["prompt_style"]
    prompts = [build_prompt(small.tokenizer, grammar, t, style) for t in texts]
    need = max(len(small.tokenize(p)) for p in prompts) + 24
    assert 2 * need > 160 - 20  # the budget, not the slot count, limits how many run at once
    together = small.generate(prompts, 24)
    small.parallel = 2
    two_slots = small.generate(prompts, 24)
    alone = [small.generate([p], 24)[0] for p in prompts]
    for batch in (together, two_slots):
        assert sum(x.text == y.text for x, y in zip(batch, alone, strict=True)) >= 4
        assert all(g.finish == y.finish for g, y in zip(batch, alone, strict=True) if g.text == y.text)
    assert len({round(g.ttft_s, 4) for g in two_slots}) > 1  # later prompts waited for a slot
    small.close()
