"""What a deployment package is built from: the job's facts and local files, checked once.

A :class:`PackageSpec` that exists is one the builder can write: every problem with its
fields is found when it is made, and all of them are reported together, each naming the
field (``examples[2].messages``) and what is wrong with it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

METHODS = ("lora", "qlora")
ROLES = ("system", "user", "assistant")
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_CONFIG = "tokenizer_config.json"


@dataclass(frozen=True)
class GenerationDefaults:
    """The decoding ``inference.py`` uses unless told otherwise. Greedy (temperature 0)
    gives the same answer every time, as the evaluation generated the examples' answers."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    def problems(self) -> list[str]:
        found = []
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            found.append(f"generation.max_new_tokens: expected a whole number >= 1, got {self.max_new_tokens!r}")
        if not _number(self.temperature) or self.temperature < 0:
            found.append(f"generation.temperature: expected a number >= 0, got {self.temperature!r}")
        if not _number(self.top_p) or not 0 < self.top_p <= 1:
            found.append(f"generation.top_p: expected a number in (0, 1], got {self.top_p!r}")
        if not _number(self.repetition_penalty) or self.repetition_penalty <= 0:
            found.append(f"generation.repetition_penalty: expected a number > 0, got {self.repetition_penalty!r}")
        return found


@dataclass(frozen=True)
class PackageSpec:
    """Everything one deployment package says about its job.

    ``base_model`` is what the job trained on: ``"embedded"``, a Hugging Face id
    (``"meta-llama/Meta-Llama-3-70B-Instruct"``), or a local path of the worker's, which the
    client must supply. ``adapter_dir`` holds the PEFT adapter and its tokenizer, as
    ``save_pretrained`` wrote them. Each of ``examples`` is ``{suite, id, messages (ending
    with the user's), adapter_answer, reference (or None)}``. ``measures_text`` are headline
    lines for the README (may be empty); ``system_prompt`` is the system message
    ``inference.py`` sends unless given another (None: the chat template's own).
    """

    job_id: str
    job_name: str
    base_model: str
    method: str
    adapter_dir: str
    examples: tuple[Mapping, ...] = ()
    generation: GenerationDefaults = field(default_factory=GenerationDefaults)
    measures_text: tuple[str, ...] = ()
    system_prompt: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "examples", tuple(self.examples))
        object.__setattr__(self, "measures_text", tuple(self.measures_text))
        found = spec_problems(self)
        if found:
            raise ValueError("deployment package spec: " + "; ".join(found))

    @property
    def adapter_path(self) -> Path:
        return Path(self.adapter_dir)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def spec_problems(spec: PackageSpec) -> list[str]:
    """Every problem with ``spec``, each naming its field; empty when it can be built."""
    found = [f"{name}: expected a non-empty string, got {getattr(spec, name)!r}"
             for name in ("job_id", "job_name", "base_model") if not _text(getattr(spec, name))]
    if spec.method not in METHODS:
        found.append(f"method: expected one of {', '.join(METHODS)}, got {spec.method!r}")
    found += adapter_problems(spec.adapter_dir)
    if not isinstance(spec.generation, GenerationDefaults):
        found.append(f"generation: expected GenerationDefaults, got {type(spec.generation).__name__}")
    else:
        found += spec.generation.problems()
    if spec.system_prompt is not None and not isinstance(spec.system_prompt, str):
        found.append(f"system_prompt: expected a string or None, got {type(spec.system_prompt).__name__}")
    found += [f"measures_text[{i}]: expected a string, got {type(line).__name__}"
              for i, line in enumerate(spec.measures_text) if not isinstance(line, str)]
    for i, example in enumerate(spec.examples):
        found += example_problems(example, f"examples[{i}]")
    return found


def adapter_problems(adapter_dir) -> list[str]:
    """What ``inference.py`` needs in the adapter's folder: its config, weights and tokenizer."""
    if not isinstance(adapter_dir, (str, Path)) or str(adapter_dir) == "":
        return [f"adapter_dir: expected the path of a directory, got {adapter_dir!r}"]
    path = Path(adapter_dir)
    if not path.is_dir():
        return [f"adapter_dir: no such directory: {path}"]
    found = []
    if not (path / ADAPTER_CONFIG).is_file():
        found.append(f"adapter_dir: {path} holds no {ADAPTER_CONFIG} (PeftModel.save_pretrained writes it)")
    if not any((path / name).is_file() for name in ADAPTER_WEIGHTS):
        found.append(f"adapter_dir: {path} holds no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    if not (path / TOKENIZER_CONFIG).is_file():
        found.append(f"adapter_dir: {path} holds no {TOKENIZER_CONFIG} (tokenizer.save_pretrained "
                     "writes it; inference.py reads the chat template from it)")
    return found


def example_problems(example, where: str) -> list[str]:
    """The problems of one example prompt, ``{suite, id, messages, adapter_answer, reference}``,
    each naming its place (``where``); empty when it is well formed.

    >>> example_problems({"suite": "ei", "id": "s1", "adapter_answer": "Hi.", "reference": None,
    ...                   "messages": [{"role": "user", "content": "Hello"}]}, "examples[0]")
    []
    >>> print(*example_problems({"suite": "ei", "id": "s1", "adapter_answer": "Hi.",
    ...     "messages": [{"role": "assistant", "content": "Hello"}]}, "examples[0]"))
    examples[0].messages: expected the last message to be the user's, got role 'assistant'
    """
    if not isinstance(example, Mapping):
        return [f"{where}: expected a dict, got {type(example).__name__}"]
    found = [f"{where}.{name}: expected a non-empty string, got {example.get(name)!r}"
             for name in ("suite", "id") if not _text(example.get(name))]
    if not isinstance(example.get("adapter_answer"), str):
        found.append(f"{where}.adapter_answer: expected a string, got {example.get('adapter_answer')!r}")
    if example.get("reference") is not None and not isinstance(example["reference"], str):
        found.append(f"{where}.reference: expected a string or None, got {example['reference']!r}")
    unknown = sorted(set(example) - {"suite", "id", "messages", "adapter_answer", "reference"})
    if unknown:
        found.append(f"{where}: unknown fields {', '.join(unknown)}")
    messages = example.get("messages")
    if not isinstance(messages, (list, tuple)) or not messages:
        return found + [f"{where}.messages: expected a non-empty list of chat messages, got {messages!r}"]
    for j, message in enumerate(messages):
        if (not isinstance(message, Mapping) or message.get("role") not in ROLES
                or not isinstance(message.get("content"), str)):
            found.append(f"{where}.messages[{j}]: expected {{role: {'|'.join(ROLES)}, content: string}}, "
                         f"got {message!r}")
    last = messages[-1]
    if isinstance(last, Mapping) and last.get("role") in ROLES and last["role"] != "user":
        found.append(f"{where}.messages: expected the last message to be the user's, got role {last['role']!r}")
    return found
