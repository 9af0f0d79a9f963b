"""benchmarks/gpu_throughput.py at tiny shapes on the CPU: the product's training step and
the TRL reference run for each case, and each prints its figures, or why it was skipped."""
from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_throughput", ROOT / "benchmarks" / "gpu_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def lines(out: str) -> list[dict]:
    """The result, ratio and skipped lines, as dicts (``kind`` and each key=value)."""
    parsed = []
    for line in out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind in ("result", "ratio", "skipped", "failed"):
            parsed.append({"kind": kind, **dict(f.split("=", 1) for f in shlex.split(rest))})
    return parsed


@pytest.fixture(scope="module")
def tiny_run(bench):
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert bench.main(["--tiny", "--steps", "1", "--warmup", "0", "--peak-tflops", "1"]) == 0
    return out.getvalue()


def test_the_whole_model_counts_as_published(bench):
    # Meta's figures for Llama 3: 8,030,261,248 and 70,553,706,496 parameters.
    assert bench.parameter_count(bench.SHAPES["8b"]) == 8_030_261_248
    assert bench.parameter_count(bench.SHAPES["70b"]) == 70_553_706_496


def test_a_tiny_run_prints_both_sides_of_each_case_with_their_figures(bench, tiny_run):
    assert tiny_run.startswith("# device='cpu'")
    got = lines(tiny_run)
    assert not [g for g in got if g["kind"] == "failed"], got
    results = {(g["case"], g["side"]): g for g in got if g["kind"] == "result"}
    four_bit = importlib.util.find_spec("bitsandbytes") is not None
    expected = {"8b-lora"} | ({"70b-qlora"} if four_bit else set())
    reference = importlib.util.find_spec("trl") is not None
    assert set(results) == {(c, s) for c in expected for s in ("ours", *(["reference"] if reference else []))}
    for (case, side), r in results.items():
        assert r["seq"] == "32"
        params = bench.parameter_count(bench.TINY_SHAPES[case.split("-")[0]])
        tokens_per_s = float(r["tokens_per_s"])
        assert tokens_per_s > 0 and float(r["step_s"]) > 0 and float(r["tokens_per_step"]) > 0
        assert float(r["mfu_4x"]) == pytest.approx(tokens_per_s * 4 * params / 1e12, rel=2e-3)
        assert float(r["mfu_6x"]) == pytest.approx(1.5 * float(r["mfu_4x"]), rel=2e-3)
        assert r["peak_mem_gib"] == "n/a"           # no CUDA: no allocator figures
        assert 4 < float(r["loss"]) < 8             # random weights: about ln(512)
    assert results[("8b-lora", "ours")]["layers"] == "2"
    assert results[("8b-lora", "ours")]["attention"] == "brightrun_packed_sdpa"
    for (case, side), r in results.items():
        if case != "70b-qlora":
            continue
        # Scaled from its two depths (at tiny shapes, timing noise may hide the growth).
        assert r["layers"] == "8(from:1,2)"
        low, high = map(float, r["measured_step_s"].split(","))
        step = bench.scale_to_depth(low, max(low, high), 1, 2, 8)
        assert float(r["step_s"]) == pytest.approx(step, rel=0.01)
        assert ("note" in r) == (high <= low)
    if reference:
        ratios = {g["case"]: float(g["ratio_tokens_per_s"]) for g in got if g["kind"] == "ratio"}
        assert set(ratios) == expected
        ours, ref = (float(results[("8b-lora", s)]["tokens_per_s"]) for s in ("ours", "reference"))
        assert ratios["8b-lora"] == pytest.approx(ours / ref, rel=0.01)
        # The reference pads rows of 4 pairs; ours packs 16 a step.
        assert float(results[("8b-lora", "ours")]["tokens_per_step"]) > 3 * float(
            results[("8b-lora", "reference")]["tokens_per_step"])


def test_without_bitsandbytes_the_4bit_case_is_skipped_saying_why(bench, monkeypatch, capsys):
    real = bench.installed
    monkeypatch.setattr(bench, "installed", lambda name: name != "bitsandbytes" and real(name))
    assert bench.main(["--tiny", "--cases", "70b-qlora"]) == 0
    [skipped] = lines(capsys.readouterr().out)
    assert skipped["kind"] == "skipped" and skipped["case"] == "70b-qlora"
    assert "bitsandbytes is not installed" in skipped["reason"] and "QLoRA case is skipped" in skipped["reason"]


def test_without_a_gpu_only_the_tiny_shapes_run(bench, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SystemExit):
        bench.main(["--cases", "8b-lora"])
    assert "no CUDA device: run with --tiny" in capsys.readouterr().err
    assert bench.four_bit_missing(torch.device("cpu"), tiny=False) is not None
