"""The package's README.md: the job's facts, then how to run, integrate, prompt and serve the
adapter, the hardware its base model needs, and what to do when something fails.

The text is ``templates/README.md.jinja``; this module gathers what it shows.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from control.services.deployment_package import base_model, chat_format, requirements
from control.services.deployment_package.spec import PackageSpec
from shared.evaluation.report import SUITE_NAMES

FALLBACK_PROMPT = "Hello, what can you help me with?"
_SHELL_SAFE = re.compile(r"^[\w ,.?:;()%-]{1,100}$")  # no quotes, $, backquotes, backslashes or ! (bash history)

_templates = Environment(loader=PackageLoader("control.services.deployment_package", "templates"),
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                         keep_trailing_newline=True, autoescape=False)


def human_size(size: int) -> str:
    """A size as people read it.

    >>> human_size(512), human_size(3_500_000), human_size(2_400_000_000)
    ('512 bytes', '3.5 MB', '2.4 GB')
    """
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def human_count(parameters: float) -> str:
    """A parameter count as model names write it.

    >>> human_count(135e6), human_count(8e9), human_count(1.5e9)
    ('135M', '8B', '1.5B')
    """
    if parameters >= 1e9:
        return f"{parameters / 1e9:.3g}B"
    return f"{parameters / 1e6:.3g}M"


def slug(name: str) -> str:
    """The adapter's name in a vLLM server: lower case, dashes.

    >>> slug("Support tone v2 (final)"), slug("***")
    ('support-tone-v2-final', 'adapter')
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48].strip("-") or "adapter"


def sample_prompt(spec: PackageSpec) -> str:
    """The prompt the README's commands show: the first example's, if it is short and safe
    inside shell and JSON quotes, else a generic one."""
    for example in spec.examples:
        text = example["messages"][-1]["content"].strip()
        if _SHELL_SAFE.match(text):
            return text
    return FALLBACK_PROMPT


def adapter_config(adapter_dir: Path) -> dict:
    try:
        return json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"adapter_dir: {adapter_dir / 'adapter_config.json'} is not readable JSON: {exc}") from None


def adapter_text(config: dict) -> str:
    """The adapter's shape, from its ``adapter_config.json``.

    >>> adapter_text({"r": 16, "lora_alpha": 32, "target_modules": ["v_proj", "q_proj"]})
    'rank 16, alpha 32, on q_proj, v_proj'
    """
    targets = config.get("target_modules") or []
    targets = sorted(targets) if isinstance(targets, list) else [str(targets)]
    return f"rank {config.get('r')}, alpha {config.get('lora_alpha')}, on {', '.join(targets)}"


def hardware_text(name: str, shown_name: str) -> str:
    parameters = base_model.parameter_count(name)
    if parameters is None:
        return (f"The base model's name ({shown_name}) does not give its size; read it on its model "
                "card and find the row below.")
    need = base_model.memory_gb(parameters)
    return (f"This package's base, {shown_name}, has about {human_count(parameters)} parameters: "
            f"about {need['cpu_float32']} GB of RAM on a CPU (float32), {need['gpu_bf16']} GB of "
            f"GPU memory in bf16, or {need['gpu_4bit']} GB in 4-bit (approximate).")


def examples_text(spec: PackageSpec) -> str:
    if not spec.examples:
        return "no prompts (the job's evaluation kept none): an empty list"
    counts = Counter(example["suite"] for example in spec.examples)
    parts = ", ".join(f"{SUITE_NAMES.get(suite, suite)}: {n}" for suite, n in counts.items())
    return f"{len(spec.examples)} prompts ({parts}), each with the adapter's answer and the reference where there is one"


def readme_text(spec: PackageSpec, adapter_bytes: int) -> str:
    """The README of ``spec``'s package; ``adapter_bytes`` is the adapter folder's size."""
    source = base_model.base_source(spec.base_model)
    config = adapter_config(spec.adapter_path)
    rank = int(config.get("r") or 0)
    conversation = ([{"role": "system", "content": spec.system_prompt}] if spec.system_prompt else []) + \
        list(chat_format.EXAMPLE_CONVERSATION)
    return _templates.get_template("README.md.jinja").render(
        job_name=spec.job_name, job_id=spec.job_id, method=spec.method,
        method_text="QLoRA: LoRA on a 4-bit base" if spec.method == "qlora" else "LoRA",
        base=source, base_text=(f"`{source['name']}`" if source["kind"] != "embedded" else
                                "SmolLM2-135M-Instruct, the embedded default model"),
        measures=list(spec.measures_text), adapter_text=adapter_text(config),
        adapter_size=human_size(adapter_bytes), examples_text=examples_text(spec),
        sample_prompt=sample_prompt(spec), system_prompt=spec.system_prompt,
        torch_version=requirements.PINS["torch"], torch_cuda_index=requirements.TORCH_CUDA_INDEX,
        torch_cpu_index=requirements.TORCH_CPU_INDEX,
        rendered=chat_format.example_prompt(spec.adapter_path, spec.system_prompt),
        example_json=json.dumps(conversation, indent=2, ensure_ascii=False),
        generation=spec.generation, hardware_text=hardware_text(spec.base_model, source["name"]),
        slug=slug(spec.job_name), rank=rank, max_lora_rank=base_model.lora_rank_flag(rank),
        vllm_base=source["name"] if source["kind"] == "hub" else "/path/to/the/base/model")
