"""Chat JSONL, the ecosystem's format: one ``{"messages": [...]}`` object a line.

Loss goes on assistant messages; a message's optional ``"weight": 0`` excludes it from
training (as in the OpenAI and Together fine-tuning APIs). Each line is one conversation;
each trained assistant message becomes one :class:`Example` whose prompt is every message
before it.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from shared.dataset.types import Conversation, Dataset, Example, Message, Sequence
from shared.dataset.problems import ProblemList, read_message, type_name
from shared.errors import DatasetError

FORMAT = "chat-jsonl"


def parse_chat_jsonl(text: str, *, source: str | None = None) -> Dataset:
    problems = ProblemList()
    conversations: list[Conversation] = []
    pairs_total = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(f"{where}, column {exc.colno}", f"invalid JSON: {exc.msg}")
            continue
        except (ValueError, RecursionError) as exc:   # a 5,000-digit number, deep nesting
            problems.add(where, f"invalid JSON: {exc or 'nested too deeply'}")
            continue
        if not isinstance(obj, dict):
            problems.add(where, f"expected a JSON object, got {type_name(obj)}")
            continue
        msgs = obj.get("messages")
        if not isinstance(msgs, list) or not msgs:
            problems.add(where, "expected a non-empty array of messages, got "
                         f"{type_name(msgs) if 'messages' in obj else 'nothing'}", "messages")
            continue
        before = problems.total
        parsed: list[tuple[Message, bool]] = []
        for mi, msg in enumerate(msgs):
            field = f"messages[{mi}]"
            message = read_message(msg, where, field, problems)
            weight = msg.get("weight", 1) if isinstance(msg, dict) else 1
            if weight not in (0, 1) or isinstance(weight, bool):
                problems.add(where, f"expected 0 or 1, got {weight!r}", f"{field}.weight")
            if message is None:
                continue
            trained = message.role == "assistant" and weight == 1
            if trained and not any(m.role == "user" for m, _ in parsed):
                problems.add(where, "an assistant reply to train on needs a user message before it",
                             field)
            parsed.append((message, trained))
        if problems.total > before:
            continue
        conv_id = f"line-{lineno}"
        examples = []
        for i, (msg, trained) in enumerate(parsed):
            if trained:
                pairs_total += 1
                examples.append(Example(id=f"{conv_id}-m{i}", conversation_id=conv_id,
                                        prompt=tuple(m for m, _ in parsed[:i]), target=msg.content))
        if not examples:
            problems.add(where, "no assistant message to train on (none, or all with weight 0)",
                         "messages")
            continue
        conversations.append(Conversation(conv_id, tuple(examples)))

    if not problems and not conversations:
        problems.add("file", "no conversations: every line is blank")
    if problems:
        raise DatasetError(problems.items, source=source, total=problems.total)
    return Dataset(format=FORMAT, conversations=conversations, pairs_total=pairs_total)


def to_chat_jsonl(sequences: Iterable[Sequence]) -> Iterable[str]:
    """Render sequences as chat JSONL lines, marking untrained assistant messages weight 0.

    >>> from shared.dataset.types import Message, Sequence
    >>> s = Sequence("c", (Message("user", "hi"), Message("assistant", "hello")), (False, True), ("p1",))
    >>> list(to_chat_jsonl([s]))
    ['{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}']
    """
    for seq in sequences:
        messages = []
        for msg, trained in zip(seq.messages, seq.trained):
            item = msg.to_dict()
            if msg.role == "assistant" and not trained:
                item["weight"] = 0
            messages.append(item)
        yield json.dumps({"messages": messages}, ensure_ascii=False)
