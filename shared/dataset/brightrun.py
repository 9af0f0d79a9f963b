"""Parse and validate the users' own format, brightrun-lora-v4 (see dataset-format.md).

Each training pair becomes one :class:`Example`: the system prompt, the conversation
history in order and the current user input form the prompt; the target response is the
only trained text. Pairs whose ``target_response`` is null are skipped and counted; a pair
without the field is an error. Every problem is reported, each naming its place.
"""
from __future__ import annotations

from shared.dataset.types import Conversation, Dataset, Example, Message
from shared.dataset.problems import ProblemList, read_message, type_name
from shared.errors import DatasetError, Problem

FORMAT_SPEC = "brightrun-lora-v4"


def _conv_where(index: int, conv_id) -> str:
    label = f' (id "{conv_id}")' if isinstance(conv_id, str) and conv_id else ""
    return f"conversation {index + 1}{label}"


def _pair_where(conv_where: str, index: int, pair_id) -> str:
    label = f' (id "{pair_id}")' if isinstance(pair_id, str) and pair_id else ""
    return f"{conv_where} > pair {index + 1}{label}"


def parse_brightrun(doc, *, source: str | None = None) -> Dataset:
    """Validate a decoded brightrun-lora-v4 document and convert it to a :class:`Dataset`.

    Raises :class:`DatasetError` listing every problem found.
    """
    problems = ProblemList()
    if not isinstance(doc, dict):
        problems.add("top level", f"expected a JSON object, got {type_name(doc)}")
        raise DatasetError(problems.items, source=source, total=problems.total)

    meta = doc.get("training_file_metadata")
    if not isinstance(meta, dict):
        problems.add("top level", "expected an object with the file's metadata, "
                     f"got {type_name(meta) if 'training_file_metadata' in doc else 'nothing'}",
                     "training_file_metadata")
        meta = {}
    else:
        spec = meta.get("format_spec")
        if spec != FORMAT_SPEC:
            problems.add("training_file_metadata", f'expected "{FORMAT_SPEC}", got '
                         f"{spec!r}" if spec is not None else f'expected "{FORMAT_SPEC}", got nothing',
                         "format_spec")

    conversations_raw = doc.get("conversations")
    if not isinstance(conversations_raw, list):
        problems.add("top level", "expected an array of conversations, got "
                     f"{type_name(conversations_raw) if 'conversations' in doc else 'nothing'}",
                     "conversations")
        raise DatasetError(problems.items, source=source, total=problems.total)
    if not conversations_raw:
        problems.add("top level", "the conversation list is empty: there is nothing to train on",
                      "conversations")

    conversations: list[Conversation] = []
    seen_conv_ids: dict[str, int] = {}
    seen_pair_ids: dict[str, str] = {}
    pairs_total = 0
    skipped_null = 0
    for ci, conv in enumerate(conversations_raw):
        if not isinstance(conv, dict):
            problems.add(_conv_where(ci, None), f"expected an object, got {type_name(conv)}")
            continue
        cmeta = conv.get("conversation_metadata")
        conv_id = cmeta.get("conversation_id") if isinstance(cmeta, dict) else None
        cwhere = _conv_where(ci, conv_id)
        scaffolding: dict[str, str] = {}
        if not isinstance(cmeta, dict):
            problems.add(cwhere, "expected an object, got "
                         f"{type_name(cmeta) if 'conversation_metadata' in conv else 'nothing'}",
                         "conversation_metadata")
        else:
            if not isinstance(conv_id, str) or not conv_id.strip():
                problems.add(cwhere, "expected a non-empty string, got "
                             f"{type_name(conv_id) if 'conversation_id' in cmeta else 'nothing'}",
                             "conversation_metadata.conversation_id")
            elif conv_id in seen_conv_ids:
                problems.add(cwhere, f"duplicate conversation id, also used by conversation "
                             f"{seen_conv_ids[conv_id] + 1}", "conversation_metadata.conversation_id")
            else:
                seen_conv_ids[conv_id] = ci
            scaff = cmeta.get("scaffolding", {})
            if scaff is None:
                scaff = {}
            if not isinstance(scaff, dict):
                problems.add(cwhere, f"expected an object, got {type_name(scaff)}",
                             "conversation_metadata.scaffolding")
            else:
                scaffolding = {k: v for k, v in scaff.items() if isinstance(v, str)}

        pairs_raw = conv.get("training_pairs")
        if not isinstance(pairs_raw, list):
            problems.add(cwhere, "expected an array of training pairs, got "
                         f"{type_name(pairs_raw) if 'training_pairs' in conv else 'nothing'}",
                         "training_pairs")
            continue
        if not pairs_raw:
            problems.add(cwhere, "the conversation has no training pairs", "training_pairs")
            continue

        examples: list[Example] = []
        for pi, pair in enumerate(pairs_raw):
            pairs_total += 1
            example, null_target = _parse_pair(pair, ci, pi, cwhere, conv_id, problems,
                                               seen_pair_ids)
            skipped_null += null_target
            if example is not None:
                examples.append(example)
        if isinstance(conv_id, str):
            conversations.append(Conversation(conv_id, tuple(examples), scaffolding))

    if problems:
        raise DatasetError(problems.items, source=source, total=problems.total)

    warnings = []
    declared = meta.get("total_training_pairs")
    if isinstance(declared, int) and declared != pairs_total:
        warnings.append(f"training_file_metadata.total_training_pairs says {declared}, "
                        f"the file holds {pairs_total}")
    declared = meta.get("total_conversations")
    if isinstance(declared, int) and declared != len(conversations):
        warnings.append(f"training_file_metadata.total_conversations says {declared}, "
                        f"the file holds {len(conversations)}")
    dataset = Dataset(format=FORMAT_SPEC, conversations=[c for c in conversations if c.examples],
                      pairs_total=pairs_total, skipped_null_targets=skipped_null,
                      warnings=warnings)
    if not dataset.conversations:
        raise DatasetError([_no_targets_problem()], source=source)
    return dataset


def _no_targets_problem() -> Problem:
    return Problem("top level", "no pair has a target_response: there is nothing to train on",
                   "conversations")


def _parse_pair(pair, ci, pi, cwhere, conv_id, problems: ProblemList, seen_pair_ids):
    """One pair: returns (Example or None, 1 if skipped for a null target else 0)."""
    if not isinstance(pair, dict):
        problems.add(_pair_where(cwhere, pi, None), f"expected an object, got {type_name(pair)}")
        return None, 0
    pair_id = pair.get("id")
    where = _pair_where(cwhere, pi, pair_id)
    before = problems.total

    if not isinstance(pair_id, str) or not pair_id.strip():
        problems.add(where, "expected a non-empty string, got "
                     f"{type_name(pair_id) if 'id' in pair else 'nothing'}", "id")
    elif pair_id in seen_pair_ids:
        problems.add(where, f"duplicate pair id, also used in {seen_pair_ids[pair_id]}", "id")
    else:
        seen_pair_ids[pair_id] = where

    turn = pair.get("turn_number")
    if "turn_number" in pair and (not isinstance(turn, int) or isinstance(turn, bool) or turn < 1):
        problems.add(where, f"expected a whole number of 1 or more, got {turn!r}", "turn_number")

    system_prompt = pair.get("system_prompt")
    if "system_prompt" not in pair:
        problems.add(where, "missing: expected a string (the system message)", "system_prompt")
    elif system_prompt is not None and not isinstance(system_prompt, str):
        problems.add(where, f"expected a string or null, got {type_name(system_prompt)}",
                     "system_prompt")

    history = pair.get("conversation_history", [])
    messages: list[Message] = []
    if history is None:
        history = []
    if not isinstance(history, list):
        problems.add(where, f"expected an array of messages, got {type_name(history)}",
                     "conversation_history")
    else:
        for mi, msg in enumerate(history):
            message = read_message(msg, where, f"conversation_history[{mi}]", problems)
            if message is not None:
                messages.append(message)

    user_input = pair.get("current_user_input")
    if not isinstance(user_input, str) or not user_input.strip():
        problems.add(where, "expected a non-empty string, got "
                     f"{type_name(user_input) if 'current_user_input' in pair else 'nothing'}",
                     "current_user_input")

    quality = None
    tmeta = pair.get("training_metadata")
    if tmeta is not None and not isinstance(tmeta, dict):
        problems.add(where, f"expected an object, got {type_name(tmeta)}", "training_metadata")
    elif isinstance(tmeta, dict) and tmeta.get("quality_score") is not None:
        quality = tmeta["quality_score"]
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 5:
            problems.add(where, f"expected a whole number from 1 to 5, got {quality!r}",
                         "training_metadata.quality_score")
            quality = None

    if "target_response" not in pair:
        problems.add(where, "missing: expected a string, or null to skip the pair",
                     "target_response")
        return None, 0
    target = pair["target_response"]
    if target is None:
        return None, 1
    if not isinstance(target, str) or not target.strip():
        problems.add(where, f"expected a non-empty string or null, got {type_name(target)}"
                     if not isinstance(target, str) else "expected a non-empty string or null, "
                     "got an empty string", "target_response")
        return None, 0
    if problems.total > before:
        return None, 0

    prompt = []
    if system_prompt:
        prompt.append(Message("system", system_prompt))
    prompt.extend(messages)
    prompt.append(Message("user", user_input))
    return Example(id=pair_id, conversation_id=conv_id, prompt=tuple(prompt), target=target,
                   quality_score=quality), 0
