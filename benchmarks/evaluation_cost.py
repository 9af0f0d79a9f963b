"""What an evaluation costs on a GPU, estimated from the token counts a run recorded.

    .venv/bin/pipeline evaluate runs/demo --eval-size full --max-new-tokens 8   # exact prompt counts
    .venv/bin/python benchmarks/evaluation_cost.py runs/demo/evaluations/<run id>/evaluation/summary.json \
        --max-new-tokens 256 [--base-model meta-llama/Meta-Llama-3-70B-Instruct] [--gpu H100_PCIE] [--method qlora]

The evaluation's summary counts the tokens each part processed (``tokens``): scored tokens
(held-out perplexity, both models), prompt tokens (every generated answer's prompt and every
forgetting question, both models), and generated tokens. Scoring and prompts are
compute-bound: 2 x parameters FLOPs a token at the catalogue's sustained fraction of the
GPU's peak. Generation is memory-bound: each decoding step reads the weights once for a whole
batch (4-bit weights for QLoRA, bf16 for LoRA), at a sustained share of the GPU's bandwidth,
and every answer is counted at ``max_new_tokens``, the worst case. Token counts come from the
run's tokenizer; another model's tokenizer counts differently (Llama 3's is within ~15% of
SmolLM2's on English text).
"""
from __future__ import annotations

import argparse
import json
import math

from shared.cost import GPU_CATALOG, model_size_b

BANDWIDTH_TB_S = {"H100_PCIE": 2.0, "A100_80GB": 2.0}
BANDWIDTH_SHARE = 0.5          # what a bitsandbytes / HF generate loop sustains of the peak
LOAD_MINUTES = {"qlora": 6.0, "lora": 10.0}     # fetch from the volume cache and load a 70B


def estimate(summary: dict, *, base_model: str, gpu_type: str, method: str, batch_size: int = 8,
             max_new_tokens: int | None = None) -> dict:
    gpu = GPU_CATALOG[gpu_type]
    size_b, _ = model_size_b(base_model)
    t = summary["tokens"]
    prompts = summary["suites"]
    answers = 2 * sum(s["samples"] for s in prompts.values())            # both models
    compute_tokens = t["perplexity"] + t["generation_prompt"] + t["forgetting_prompt"]
    flops = 2 * size_b * 1e9 * compute_tokens
    compute_s = flops / (gpu.mfu * gpu.bf16_tflops * 1e12)
    weight_bytes = size_b * 1e9 * (0.55 if method == "qlora" else 2.0)
    step_s = weight_bytes / (BANDWIDTH_TB_S.get(gpu_type, 2.0) * 1e12 * BANDWIDTH_SHARE)
    decode_steps = math.ceil(answers / batch_size) * (max_new_tokens or summary["max_new_tokens"])
    decode_s = decode_steps * step_s
    total_h = (compute_s + decode_s) / 3600 + LOAD_MINUTES[method] / 60
    return {"base_model": base_model, "size_b": size_b, "gpu": gpu.name, "method": method,
            "answers": answers, "compute_tokens": compute_tokens, "decode_steps": decode_steps,
            "compute_minutes": round(compute_s / 60, 1), "decode_minutes": round(decode_s / 60, 1),
            "load_minutes": LOAD_MINUTES[method], "total_minutes": round(total_h * 60, 1),
            "spot_usd": round(total_h * gpu.spot_per_hour, 2),
            "on_demand_usd": round(total_h * gpu.on_demand_per_hour, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("summary")
    p.add_argument("--base-model", default="meta-llama/Meta-Llama-3-70B-Instruct")
    p.add_argument("--gpu", default="H100_PCIE", choices=sorted(GPU_CATALOG))
    p.add_argument("--method", default="qlora", choices=["qlora", "lora"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="count every answer at this length (default: the run's own setting)")
    a = p.parse_args()
    with open(a.summary) as f:
        summary = json.load(f)
    print(f"from {a.summary}: size {summary['size']}, max_new_tokens {summary['max_new_tokens']}, "
          f"tokens {summary['tokens']}, seconds by part on this machine {summary['timings']}")
    for key, value in estimate(summary, base_model=a.base_model, gpu_type=a.gpu, method=a.method,
                               batch_size=a.batch_size, max_new_tokens=a.max_new_tokens).items():
        print(f"  {key:<16} {value}")


if __name__ == "__main__":
    main()
