"""Read a dataset file of either format, safely: size limit, encoding, JSON syntax with
line and column, empty files, then the format's own validation. The size limit is the
caller's (its ``DATASET_MAX_BYTES``); it defaults to ``MAX_BYTES``."""
from __future__ import annotations

import json
import os
from pathlib import Path

from shared.dataset.brightrun import FORMAT_SPEC, parse_brightrun
from shared.dataset.chat_jsonl import FORMAT as CHAT_JSONL, parse_chat_jsonl
from shared.dataset.types import Dataset
from shared.errors import DatasetError, Problem

FORMATS = (FORMAT_SPEC, CHAT_JSONL)
# The users' production file is 8-10 MB; anything this large is a mistake, refused
# before it is read into memory.
MAX_BYTES = 100 * 1024 * 1024


def detect_format(name: str, text: str) -> str:
    """Pick the format from the file name, else from the content.

    >>> detect_format("x.jsonl", "")
    'chat-jsonl'
    >>> detect_format("data", '{"messages": []}\\n{"messages": []}')
    'chat-jsonl'
    >>> detect_format("data", '{\\n "conversations": []}')
    'brightrun-lora-v4'
    """
    lower = name.lower()
    if lower.endswith(".jsonl"):
        return CHAT_JSONL
    if lower.endswith(".json"):
        return FORMAT_SPEC
    first = text.lstrip()[:1]
    if first == "{":
        first_line = text.lstrip().split("\n", 1)[0]
        try:
            obj = json.loads(first_line)
        except json.JSONDecodeError:
            return FORMAT_SPEC
        return CHAT_JSONL if isinstance(obj, dict) and "messages" in obj else FORMAT_SPEC
    return FORMAT_SPEC


def parse_bytes(data: bytes, *, name: str = "dataset", fmt: str | None = None,
                max_bytes: int = MAX_BYTES) -> Dataset:
    """Decode, detect and validate a dataset held in memory."""
    if len(data) > max_bytes:
        raise DatasetError([_too_large(len(data), max_bytes)], source=name)
    if not data.strip():
        raise DatasetError([Problem("file", "the file is empty")], source=name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError([Problem(f"byte {exc.start}", "the file is not UTF-8 text")],
                           source=name) from None
    fmt = fmt or detect_format(name, text)
    if fmt == CHAT_JSONL:
        return parse_chat_jsonl(text, source=name)
    if fmt != FORMAT_SPEC:
        raise DatasetError([Problem("format", f"unknown format {fmt!r}: expected one of "
                                    + ", ".join(FORMATS))], source=name)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        # An unterminated string runs to the end of the file: JSON strings hold no newline.
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = " (the file ends early: truncated?)" if ends_early else ""
        raise DatasetError([Problem(f"line {exc.lineno}, column {exc.colno}",
                                    f"invalid JSON: {exc.msg}{hint}")], source=name) from None
    except RecursionError:
        raise DatasetError([Problem("file", "invalid JSON: nested too deeply")],
                           source=name) from None
    except ValueError as exc:          # e.g. an integer of more than 4,300 digits
        raise DatasetError([Problem("file", f"invalid JSON: {exc}")], source=name) from None
    return parse_brightrun(doc, source=name)


def load_dataset(path: str | os.PathLike, *, fmt: str | None = None,
                 max_bytes: int = MAX_BYTES) -> Dataset:
    """Read and validate a dataset file. Raises :class:`DatasetError` naming every problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise DatasetError([Problem("file", "is a directory, expected a dataset file")],
                               source=str(path))
        if size > max_bytes:
            raise DatasetError([_too_large(size, max_bytes)], source=str(path))
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError([Problem("file", "no such file")], source=str(path)) from None
    except PermissionError:
        raise DatasetError([Problem("file", "permission denied")], source=str(path)) from None
    return parse_bytes(data, name=str(path), fmt=fmt, max_bytes=max_bytes)


def _too_large(size: int, limit: int) -> Problem:
    return Problem("file", f"{size / 1e6:.1f} MB is larger than the {limit / 1e6:.0f} MB limit "
                   "(a real dataset is about 10 MB): is this the right file?")
