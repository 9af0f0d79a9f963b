"""The command line's evaluation settings: ``--eval-size``, ``--max-new-tokens`` and
``--prompts`` of ``pipeline train`` and ``pipeline evaluate``, as the job input's
``evaluation``; the prompts file is checked before anything runs and kept in the run's storage."""
from __future__ import annotations

import hashlib
from pathlib import Path

import click

from shared.dataset.prompts import parse_prompts
from shared.storage import Storage


def options(command):
    command = click.option("--prompts", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                           help="Your own prompts to evaluate on (JSONL: prompt or messages, "
                                "optional reference).")(command)
    command = click.option("--max-new-tokens", type=click.IntRange(1, 2048), default=256, show_default=True,
                           help="The longest answer each model generates.")(command)
    return click.option("--eval-size", type=click.Choice(["quick", "full", "perplexity"]), default=None,
                        help="quick: a sample of each suite; full: all of it; perplexity: only the held-out perplexity "
                             "[default: full on a GPU, quick on a CPU].")(command)


def _prompts_key(data: bytes) -> str:
    return f"prompts/{hashlib.sha256(data).hexdigest()[:16]}.jsonl"


def settings(size, max_new_tokens, prompts: Path | None) -> dict:
    """The job input's ``evaluation``; a prompts file is checked here, before anything runs."""
    out = {"size": size, "max_new_tokens": max_new_tokens}
    if prompts is not None:
        data = prompts.read_bytes()
        parse_prompts(data, name=str(prompts))
        out["prompts"] = {"key": _prompts_key(data), "sha256": hashlib.sha256(data).hexdigest()}
    return out


def store_prompts(storage: Storage, prompts: Path | None) -> None:
    if prompts is not None:
        data = prompts.read_bytes()
        storage.put_bytes(_prompts_key(data), data)
