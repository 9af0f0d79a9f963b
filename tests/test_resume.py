"""Interrupted runs resume exactly: killed with SIGKILL after a checkpoint, or stopped with
Ctrl-C, then run again with the same command, they end with the same adapter weights and
the same loss curve as an uninterrupted run of the same seed."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def command(tiny_model_dir, small_sample, tmp_path_factory):
    data = tmp_path_factory.mktemp("data") / "small.json"
    data.write_bytes(small_sample)

    def command(out: Path, *extra: str) -> list[str]:
        # Dropout stays on (0.05): resuming must restore the RNG too.
        return [sys.executable, "-m", "control.cli", "train", str(data), "--out", str(out),
                "--base-model", tiny_model_dir, "--batch-size", "1", "--grad-accum", "2",
                "--epochs", "3", "--learning-rate", "1e-2", "--checkpoint-every", "3",
                "--seed", "7", "--max-new-tokens", "16", "--quiet", *extra]
    return command


@pytest.fixture(scope="module")
def uninterrupted(command, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(command(out), check=True, capture_output=True, timeout=600)
    return out


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def assert_same_run(a: Path, b: Path) -> None:
    wa = load_file(str(a / "adapter/adapter_model.safetensors"))
    wb = load_file(str(b / "adapter/adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs by {(wa[key] - wb[key]).abs().max()}"
    curve = lambda d: [(m["step"], m["loss"], m["lr"]) for m in
                       map(json.loads, (d / "metrics.jsonl").read_text().splitlines())]
    assert curve(a) == curve(b)          # every step once, none missing, same losses
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["eval"] == sb["eval"]
    assert_same_evaluation(a, b)


def assert_same_evaluation(a: Path, b: Path) -> None:
    """The same measures, figures and answers (the time each part took aside)."""
    ea, eb = (json.loads((d / "evaluation/summary.json").read_text()) for d in (a, b))
    for key in ("measures", "perplexity", "forgetting", "similarity", "suites", "tokens", "fingerprint"):
        assert ea[key] == eb[key], key
    for suite in ("heldout", "ei"):
        assert (a / f"evaluation/samples/{suite}.jsonl").read_bytes() == (b / f"evaluation/samples/{suite}.jsonl").read_bytes()


def test_a_run_killed_after_its_first_checkpoint_resumes_to_the_same_adapter(command, uninterrupted, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(out / "checkpoints/step-00000003/manifest.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (out / "summary.json").exists()

    # The same directory with other settings is refused, naming the difference.
    other = subprocess.run(command(out, "--seed", "8", "--learning-rate", "5e-3"),
                           capture_output=True, text=True, timeout=600)
    assert other.returncode == 2
    assert "holds checkpoints of a different run" in other.stderr
    assert "hyperparameters.learning_rate: 0.01 -> 0.005" in other.stderr and "seed: 7 -> 8" in other.stderr

    resumed = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed from step 3)" in resumed.stderr or "(resumed from step 6)" in resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumes"] == 1
    assert_same_run(uninterrupted, out)


def test_ctrl_c_saves_a_checkpoint_exits_130_and_the_rerun_finishes_the_same(command, uninterrupted, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(out / "checkpoints/step-00000003/manifest.json", proc)
    time.sleep(0.5)                       # stop between checkpoints
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Training interrupted at step" in err and "checkpoint saved" in err
    assert "Traceback" not in err
    step = int(err.split("Training interrupted at step ")[1].split(";")[0])
    manifest = json.loads((out / f"checkpoints/step-{step:08d}/manifest.json").read_text())
    assert manifest["meta"]["reason"] in ("signal", "interval")

    resumed = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(uninterrupted, out)


def test_a_worker_killed_while_evaluating_resumes_without_retraining_to_the_same_results(command, uninterrupted, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(out / "evaluation/parts/ei.json", proc)      # held-out and scenario answers done
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (out / "evaluation/summary.json").exists() and not (out / "summary.json").exists()
    parts = out / "evaluation/parts"
    kept = {p.name: p.stat().st_mtime_ns for p in parts.iterdir()}
    assert {"perplexity.json", "heldout.json", "ei.json"} <= set(kept)
    metrics_before = (out / "metrics.jsonl").read_bytes()

    resumed = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    steps = json.loads((out / "summary.json").read_text())["steps"]
    assert f"(resumed from step {steps})" in resumed.stderr          # the final checkpoint: no step re-run
    assert (out / "metrics.jsonl").read_bytes() == metrics_before
    for name, mtime in kept.items():                                  # finished parts are not redone
        assert (parts / name).stat().st_mtime_ns == mtime, name
    assert_same_run(uninterrupted, out)


def test_pipeline_evaluate_runs_the_suite_again_on_a_finished_run_with_your_prompts(uninterrupted, tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Is a Roth IRA right for me?", "reference": "It depends on your tax rate.", "id": "roth"}\n')
    evaluate = [sys.executable, "-m", "control.cli", "evaluate", str(uninterrupted), "--max-new-tokens", "4", "--quiet"]
    done = subprocess.run([*evaluate, "--prompts", str(prompts)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Held-out perplexity" in done.stdout and "Forgetting check" in done.stdout
    assert "waiting for people's scores" in done.stdout and "before / after" in done.stdout
    [run] = list((uninterrupted / "evaluations").iterdir())
    summary = json.loads((run / "evaluation/summary.json").read_text())
    assert summary["run_id"] == run.name and summary["suites"]["custom"]["samples"] == 1
    first = json.loads((uninterrupted / "evaluation/summary.json").read_text())
    assert summary["perplexity"]["trained"] == first["perplexity"]["trained"]      # the same adapter

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": ""}\n')
    refused = subprocess.run([*evaluate, "--prompts", str(bad)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "line 1" in refused.stderr
    empty = subprocess.run([sys.executable, "-m", "control.cli", "evaluate", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert empty.returncode == 2 and "holds no finished run" in empty.stderr
