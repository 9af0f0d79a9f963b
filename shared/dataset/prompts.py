"""A prompts file: the customer's own evaluation prompts, one JSON object a line.

Each line is either ``{"prompt": "text"}`` (one user message) or ``{"messages": [...]}``
(``system``/``user``/``assistant`` messages, ending with the user message to answer), with
optional keys:

- ``reference``: the reply they expect (a string; ``null`` is the same as leaving it out),
- ``id``: a unique name for the prompt (default ``p-<line number>``),
- ``category``: a label to group results by (at most 64 characters).

Any other key is refused. A file holds at most ``MAX_PROMPTS`` prompts, each prompt (all of
its messages together) and each reference at most ``MAX_CHARS`` characters; blank lines are
skipped. Every problem is listed with its line and field, as for a dataset.

>>> cases = parse_prompts(b'{"prompt": "How do I start a budget?", "reference": "Begin with..."}\\n'
...                       b'\\n'
...                       b'{"messages": [{"role": "system", "content": "Be kind."},'
...                       b' {"role": "user", "content": "I lost my job."}], "id": "job-loss",'
...                       b' "category": "hardship"}', name="prompts.jsonl")
>>> [(c.id, c.question, c.reference, c.category) for c in cases]
[('p-1', 'How do I start a budget?', 'Begin with...', None), ('job-loss', 'I lost my job.', None, 'hardship')]
>>> cases[1].messages
({'role': 'system', 'content': 'Be kind.'}, {'role': 'user', 'content': 'I lost my job.'})
>>> parse_prompts(b'{"prompt": "hi", "answer": "hello"}', name="p.jsonl")
Traceback (most recent call last):
...
shared.errors.DatasetError: 1 problem found in p.jsonl:
  - line 1 > field "answer": unknown field: a line holds prompt or messages, and optionally reference, id, category
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from shared.dataset.loading import MAX_BYTES
from shared.dataset.problems import ProblemList, read_message, type_name
from shared.dataset.types import Message
from shared.errors import DatasetError, Problem

PROMPTS_FORMAT = "prompts-jsonl"
MAX_PROMPTS = 1000
MAX_CHARS = 16_000              # a prompt (all its messages) or a reference
MAX_CATEGORY_CHARS = 64
MAX_ID_CHARS = 128
KEYS = ("prompt", "messages", "reference", "id", "category")
MESSAGE_KEYS = ("role", "content")


@dataclass(frozen=True)
class PromptCase:
    """One prompt to answer with the base model and the adapter: the messages up to and
    including the user message (``{"role", "content"}`` dicts, as a chat template takes
    them), the reply they expect if they gave one, and its label."""

    id: str
    messages: tuple[dict, ...]
    reference: str | None = None
    category: str | None = None
    line: int = 0                   # where it is in the file, for messages

    @property
    def question(self) -> str:
        """The user message the answer replies to (the last message)."""
        return self.messages[-1]["content"]

    def to_dict(self) -> dict:
        return {"id": self.id, "messages": [dict(m) for m in self.messages],
                "reference": self.reference, "category": self.category}


def parse_prompts(raw: bytes, *, name: str, max_bytes: int = MAX_BYTES) -> list[PromptCase]:
    """Read and validate a prompts file held in memory. Raises :class:`DatasetError` naming
    every problem (the first ``MAX_LISTED`` of them) with its line and field."""
    if len(raw) > max_bytes:
        raise DatasetError([Problem("file", f"{len(raw) / 1e6:.1f} MB is larger than the "
                                    f"{max_bytes / 1e6:.0f} MB limit (a prompts file holds at most "
                                    f"{MAX_PROMPTS:,} prompts): is this the right file?")], source=name)
    if not raw.strip():
        raise DatasetError([Problem("file", "the file is empty")], source=name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError([Problem(f"byte {exc.start}", "the file is not UTF-8 text")],
                           source=name) from None

    problems = ProblemList()
    cases: list[PromptCase] = []
    seen: dict[str, int] = {}       # id -> the line that has it
    count = 0
    # Split on newlines only: U+2028 and friends may stand unescaped inside a JSON string.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        count += 1
        if count == MAX_PROMPTS + 1:
            problems.add(f"line {lineno}", f"prompt {count:,}: a prompts file holds at most "
                         f"{MAX_PROMPTS:,} prompts; split it, or keep the ones that matter most")
        case = _read_line(line, lineno, problems)
        if case is None:
            continue
        if case.id in seen:
            problems.add(f"line {lineno}", f'duplicate id "{case.id}": line {seen[case.id]} has it '
                         "too; give each prompt its own id"
                         + (" (a prompt without an id is named p-<line>)" if case.id.startswith("p-") else ""),
                         "id")
            continue
        seen[case.id] = lineno
        cases.append(case)

    if not problems and not cases:
        problems.add("file", "no prompts: every line is blank")
    if problems:
        raise DatasetError(problems.items, source=name, total=problems.total)
    return cases


def _read_line(line: str, lineno: int, problems: ProblemList) -> PromptCase | None:
    """One line's prompt, or None after recording every problem in it."""
    where = f"line {lineno}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        problems.add(f"{where}, column {exc.colno}", f"invalid JSON: {exc.msg}")
        return None
    except (ValueError, RecursionError) as exc:      # a 5,000-digit number, deep nesting
        problems.add(where, f"invalid JSON: {exc or 'nested too deeply'}")
        return None
    if not isinstance(obj, dict):
        problems.add(where, f"expected a JSON object, got {type_name(obj)}")
        return None
    before = problems.total
    for key in obj:
        if key not in KEYS:
            problems.add(where, "unknown field: a line holds prompt or messages, and optionally "
                         "reference, id, category", key)
    messages = _read_prompt(obj, where, problems)
    reference = _optional_text(obj, "reference", where, problems, MAX_CHARS)
    category = _optional_text(obj, "category", where, problems, MAX_CATEGORY_CHARS)
    case_id = _optional_text(obj, "id", where, problems, MAX_ID_CHARS, null=False)
    if problems.total > before or messages is None:
        return None
    return PromptCase(id=case_id or f"p-{lineno}", messages=messages, reference=reference,
                      category=category, line=lineno)


def _read_prompt(obj: dict, where: str, problems: ProblemList) -> tuple[dict, ...] | None:
    """The messages of ``prompt`` or ``messages``, or None after recording what is wrong."""
    if "prompt" in obj and "messages" in obj:
        problems.add(where, "give either prompt or messages, not both", "messages")
        return None
    if "prompt" in obj:
        prompt = obj["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            problems.add(where, "expected the prompt's text, got "
                         + ("an empty string" if isinstance(prompt, str) else type_name(prompt)), "prompt")
            return None
        if len(prompt) > MAX_CHARS:
            problems.add(where, f"{len(prompt):,} characters: a prompt holds at most {MAX_CHARS:,}", "prompt")
            return None
        return ({"role": "user", "content": prompt},)
    if "messages" not in obj:
        problems.add(where, 'no prompt: give "prompt" (the text) or "messages" (an array ending '
                     "with a user message)", "prompt")
        return None
    msgs = obj["messages"]
    if not isinstance(msgs, list) or not msgs:
        problems.add(where, "expected a non-empty array of messages, got "
                     + ("an empty array" if isinstance(msgs, list) else type_name(msgs)), "messages")
        return None
    before = problems.total
    parsed: list[Message] = []
    for i, msg in enumerate(msgs):
        field = f"messages[{i}]"
        message = read_message(msg, where, field, problems)
        if isinstance(msg, dict):
            for key in msg:
                if key not in MESSAGE_KEYS:
                    problems.add(where, 'unknown field: a message holds "role" and "content"',
                                 f"{field}.{key}")
        if message is not None:
            parsed.append(message)
    if problems.total > before:
        return None
    last = parsed[-1]
    if last.role != "user":
        problems.add(where, f'the last message is the {last.role}\'s: the messages end with the user '
                     "message to answer", f"messages[{len(parsed) - 1}].role")
        return None
    if not last.content.strip():
        problems.add(where, "the user message to answer is empty", f"messages[{len(parsed) - 1}].content")
        return None
    chars = sum(len(m.content) for m in parsed)
    if chars > MAX_CHARS:
        problems.add(where, f"{chars:,} characters in all: a prompt's messages hold at most {MAX_CHARS:,}",
                     "messages")
        return None
    return tuple(m.to_dict() for m in parsed)


def _optional_text(obj: dict, key: str, where: str, problems: ProblemList, limit: int,
                   null: bool = True) -> str | None:
    """An optional string field: absent (or null, where ``null``), else non-blank text of at
    most ``limit`` characters."""
    if key not in obj or (null and obj[key] is None):
        return None
    value = obj[key]
    if not isinstance(value, str):
        problems.add(where, f"expected a string, got {type_name(value)}", key)
    elif not value.strip():
        problems.add(where, f"empty: leave {key} out if there is none", key)
    elif len(value) > limit:
        problems.add(where, f"{len(value):,} characters: {key} holds at most {limit:,}", key)
    else:
        return value
    return None


def describe_prompts(cases: list[PromptCase]) -> dict:
    """What a prompts file's page and API show about it.

    >>> user, system = {"role": "user", "content": "hi"}, {"role": "system", "content": "s"}
    >>> describe_prompts([PromptCase("a", (user,), "hello", "money"), PromptCase("b", (system, user))])
    {'format': 'prompts-jsonl', 'prompts': 2, 'with_reference': 1, 'multi_turn': 1, 'categories': {'money': 1}, 'longest_prompt_chars': 3}
    """
    return {"format": PROMPTS_FORMAT, "prompts": len(cases),
            "with_reference": sum(c.reference is not None for c in cases),
            "multi_turn": sum(len(c.messages) > 1 for c in cases),
            "categories": dict(Counter(c.category for c in cases if c.category).most_common()),
            "longest_prompt_chars": max((sum(len(m["content"]) for m in c.messages) for c in cases), default=0)}
