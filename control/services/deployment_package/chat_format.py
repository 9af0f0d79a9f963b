"""The adapter's chat format, shown in the package's README: its tokenizer's chat template
rendered on an example conversation, without transformers (the control plane has none).

The template is Jinja, read from the tokenizer files saved beside the adapter
(``chat_template.jinja``, or ``tokenizer_config.json``'s ``chat_template``), and rendered
in Jinja's immutable sandbox with the options and helpers transformers gives it. A
template that needs more than those renders as None, and the README describes the roles.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

EXAMPLE_CONVERSATION = (
    {"role": "user", "content": "I got a bonus this month. Should I pay off my card or save it?"},
    {"role": "assistant", "content": "Congratulations! What interest rate is the card charging you?"},
    {"role": "user", "content": "About 24%."},
)


def _read_config(adapter_dir: Path) -> dict:
    try:
        return json.loads((adapter_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def chat_template(adapter_dir: Path) -> str | None:
    """The chat template the adapter's tokenizer applies, or None if it has none."""
    standalone = adapter_dir / "chat_template.jinja"
    if standalone.is_file():
        return standalone.read_text(encoding="utf-8")
    template = _read_config(adapter_dir).get("chat_template")
    if isinstance(template, list):       # named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) else None


def special_tokens(adapter_dir: Path) -> dict[str, str]:
    """The tokenizer's special tokens templates refer to (``bos_token``, ``eos_token``...)."""
    tokens = {}
    for name, value in _read_config(adapter_dir).items():
        if name.endswith("_token"):
            value = value.get("content") if isinstance(value, dict) else value
            if isinstance(value, str):
                tokens[name] = value
    return tokens


def _raise(message: str):
    raise TemplateError(message)


def render(template: str, messages, tokens: dict[str, str] | None = None) -> str | None:
    """``messages`` as the model reads them, ready for its reply (``add_generation_prompt``);
    None when the template does not render here.

    >>> render("{% for m in messages %}<{{ m.role }}>{{ m.content }}\\n{% endfor %}"
    ...        "{% if add_generation_prompt %}<assistant>{% endif %}",
    ...        [{"role": "user", "content": "Hi"}])
    '<user>Hi\\n<assistant>'
    """
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, indent=indent, ensure_ascii=False)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template).render(messages=list(messages), add_generation_prompt=True,
                                                **(tokens or {}))
    except (TemplateError, TypeError, ValueError, KeyError, AttributeError):
        return None


def example_prompt(adapter_dir: Path, system_prompt: str | None) -> str | None:
    """The example conversation rendered with the adapter's template, None without one."""
    template = chat_template(adapter_dir)
    if template is None:
        return None
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return render(template, system + list(EXAMPLE_CONVERSATION), special_tokens(adapter_dir))
