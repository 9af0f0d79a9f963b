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
                "--seed", "7", "--quiet", *extra]
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
