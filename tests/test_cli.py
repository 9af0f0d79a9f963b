"""The pipeline command line: exit codes, messages, and nothing half-written."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from control.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_validate_prints_statistics_and_exits_0(sample_doc, write_json):
    result = invoke("validate", write_json(sample_doc), "--estimate-tokens")
    assert result.exit_code == 0, result.output
    assert "valid brightrun-lora-v4" in result.output
    assert "training pairs     40 of 43 (3 with a null target skipped)" in result.output


def test_validate_counts_tokens_with_the_embedded_tokenizer_as_json(sample_doc, write_json, embedded_dir):
    result = invoke("validate", write_json(sample_doc), "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)["stats"]
    assert stats["tokens"]["counted_with"] == "tokenizer"
    assert stats["tokens"]["folded"] < stats["tokens"]["unfolded"]


def test_validate_lists_every_error_and_exits_2(sample_doc, write_json):
    sample_doc["conversations"][0]["training_pairs"][0]["conversation_history"] = "oops"
    sample_doc["conversations"][1]["training_pairs"][2]["current_user_input"] = 7
    result = invoke("validate", write_json(sample_doc), "--json")
    assert result.exit_code == 2
    error = json.loads(result.output)["error"]
    assert error["type"] == "dataset_format" and error["user_error"] and error["count"] == 2
    assert [p["field"] for p in error["problems"]] == ["conversation_history", "current_user_input"]


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "control.cli", "validate", str(tmp_path / "nope.json")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_convert_writes_chat_jsonl_that_reads_back(sample_doc, write_json, tmp_path):
    out = tmp_path / "out" / "sample.jsonl"
    result = invoke("convert", write_json(sample_doc), "--to", "chat-jsonl", "--out", out)
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 40 and json.loads(lines[0])["messages"][-1]["role"] == "assistant"
    assert invoke("validate", out, "--estimate-tokens").exit_code == 0
    folded = tmp_path / "folded.jsonl"
    assert invoke("convert", write_json(sample_doc), "--to", "chat-jsonl", "--out", folded, "--fold").exit_code == 0
    assert len(folded.read_text().splitlines()) == 14


def test_convert_of_a_broken_file_writes_nothing(write_json, tmp_path):
    out = tmp_path / "x.jsonl"
    result = invoke("convert", write_json('{"conversations": ['), "--to", "chat-jsonl", "--out", out)
    assert result.exit_code == 2 and not out.exists()


def test_malformed_json_of_every_kind_is_an_error_not_a_traceback(tmp_path):
    cases = {
        "huge-number.json": '{"conversations": [' + "9" * 5000 + "]}",
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep.jsonl": "[" * 100_000 + "]" * 100_000 + "\n",
        "huge-number.jsonl": '{"messages": ' + "9" * 5000 + "}\n",
        "assistant-first.jsonl": '{"messages": [{"role": "assistant", "content": "hi"}]}\n',
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = subprocess.run([sys.executable, "-m", "control.cli", "validate", str(path),
                                 "--estimate-tokens"], capture_output=True, text=True)
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr and "problem found" in result.stderr, name


def test_train_refuses_bad_input_before_writing_anything(sample_doc, write_json, tmp_path):
    out = tmp_path / "run"
    sample_doc["conversations"][3]["training_pairs"][0]["conversation_history"][0:0] = [{"role": "robot"}]
    result = invoke("train", write_json(sample_doc), "--out", out)
    assert result.exit_code == 2
    assert "unknown role 'robot'" in result.output and not out.exists()
    result = invoke("train", write_json({}), "--out", out)
    assert result.exit_code == 2 and not out.exists()
    good = write_json(json.loads(json.dumps(sample_doc).replace('"robot"', '"user", "content": "x"')))
    for args in (["--epochs", "0"], ["--learning-rate", "-1"], ["--batch-size", "0"]):
        result = invoke("train", good, "--out", out, *args)
        assert result.exit_code == 2, result.output
        assert "hyperparameters" in result.output and not out.exists()
    low = json.loads(good.read_text())
    for conv in low["conversations"]:
        for pair in conv["training_pairs"]:
            pair["training_metadata"]["quality_score"] = 2
    result = invoke("train", write_json(low, "low.json"), "--out", out, "--min-quality", "3")
    assert result.exit_code == 2 and "quality score of 3 or more" in result.output
    assert not out.exists()
    one = json.loads(good.read_text())
    one["conversations"] = one["conversations"][:1]
    result = invoke("train", write_json(one, "one.json"), "--out", out)
    assert result.exit_code == 2 and "at least 2 conversations" in result.output and not out.exists()


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_the_worker_stops_on_sigterm_while_idle_instead_of_starting_again(app, tmp_path):
    """``pipeline worker`` under systemd or Kubernetes: SIGTERM stops it, exit code 0."""
    from tests.live_system import RQWorkerProcess

    import time
    worker = RQWorkerProcess(app, tmp_path / "data", tmp_path / "worker.log").start()
    deadline = time.monotonic() + 30       # its loop has begun (signal handlers in place, first sweep run)
    while "cleaning registries" not in worker.tail() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "cleaning registries" in worker.tail(), worker.tail()
    assert worker.stop() == 0, worker.tail()
    assert "starting a new one" not in worker.tail()
