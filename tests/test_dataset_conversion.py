"""Chat JSONL in and out, folding, the split, quality filter and statistics."""
from __future__ import annotations

import json

import pytest

from shared.dataset import (describe, fold_conversation, load_dataset, min_quality, parse_bytes,
                            split_conversations, to_chat_jsonl, to_sequences)
from shared.dataset.types import Conversation, Example, Message
from shared.errors import ConfigError, DatasetError


@pytest.fixture
def sample(sample_doc, write_json):
    return load_dataset(write_json(sample_doc))


def test_folding_puts_each_sample_conversation_in_one_sequence(sample):
    seqs = to_sequences(sample.conversations, fold=True)
    assert len(seqs) == 14
    assert sum(s.n_targets for s in seqs) == 40
    # Every target of a folded sequence keeps exactly the prompt it has alone.
    by_id = {e.id: e for e in sample.examples}
    for seq in seqs:
        targets = [i for i, t in enumerate(seq.trained) if t]
        for pos, ex_id in zip(targets, seq.example_ids):
            ex = by_id[ex_id]
            assert seq.messages[:pos] == ex.prompt
            assert seq.messages[pos].content == ex.target


def test_folding_keeps_pairs_apart_where_the_history_differs(sample):
    conv = sample.conversations[0]                       # conv-001, four turns
    t1, t2, t3, t4 = conv.examples
    edited = Example(t2.id, t2.conversation_id,
                     t2.prompt[:1] + (Message("user", "a paraphrase"),) + t2.prompt[2:], t2.target)
    seqs = fold_conversation(Conversation(conv.id, (t1, edited, t3, t4)))
    # Turn 2's history no longer matches turn 1: it stands alone, while turns 3 and 4,
    # whose histories still start with turn 1 exactly, fold onto it.
    assert [s.example_ids for s in seqs] == [(t1.id, t3.id, t4.id), (t2.id,)]


def test_a_null_first_turn_still_folds_by_carrying_its_history_untrained(sample):
    conv = next(c for c in sample.conversations if c.id == "conv-003")
    [seq] = fold_conversation(conv)
    # system, user 1, assistant 1 (not a target), user 2, target 2, user 3, target 3
    assert seq.trained == (False, False, False, False, True, False, True)


def test_chat_jsonl_round_trip_gives_the_same_training_examples(sample, tmp_path):
    lines = list(to_chat_jsonl(to_sequences(sample.conversations, fold=False)))
    assert len(lines) == 40
    back = parse_bytes("\n".join(lines).encode(), name="x.jsonl")
    assert [(e.prompt, e.target) for e in back.examples] == \
           [(e.prompt, e.target) for e in sample.examples]
    folded = list(to_chat_jsonl(to_sequences(sample.conversations, fold=True)))
    back = parse_bytes("\n".join(folded).encode(), name="x.jsonl")
    assert sorted(repr((e.prompt, e.target)) for e in back.examples) == \
           sorted(repr((e.prompt, e.target)) for e in sample.examples)


def test_chat_jsonl_errors_name_line_and_field():
    text = "\n".join([
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}),
        "",
        json.dumps({"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": 3}]}),
        '{"messages": [',
        json.dumps({"messages": [{"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "yo", "weight": 0}]}),
    ])
    with pytest.raises(DatasetError) as info:
        parse_bytes(text.encode(), name="d.jsonl")
    got = [str(p) for p in info.value.problems]
    assert got[0].startswith('line 3 > field "messages[0].role": unknown role \'tool\'')
    assert got[1].startswith('line 3 > field "messages[1].content": expected a string, got number')
    assert got[2].startswith("line 4, column 15: invalid JSON")
    assert got[3] == 'line 5 > field "messages": no assistant message to train on (none, or all with weight 0)'


def test_split_is_deterministic_by_conversation_and_never_leaks(sample):
    train, val = split_conversations(sample.conversations, 0.2, seed=7)
    again = split_conversations(list(reversed(sample.conversations)), 0.2, seed=7)
    assert {c.id for c in val} == {c.id for c in again[1]}
    assert len(val) >= 1 and len(train) + len(val) == 14
    assert not {c.id for c in train} & {c.id for c in val}
    pair_ids = lambda cs: {e.id for c in cs for e in c.examples}
    assert not pair_ids(train) & pair_ids(val)
    other = split_conversations(sample.conversations, 0.2, seed=8)[1]
    assert {c.id for c in other} != {c.id for c in val}


@pytest.mark.parametrize("n, fraction, held", [(16, 0.2, 3), (242, 0.2, 48), (14, 0.2, 3),
                                                (10, 0.25, 3), (3, 0.2, 1), (2, 0.9, 1), (5, 0.99, 4)])
def test_the_split_holds_out_exactly_round_fraction_times_n_at_least_one_each_side(n, fraction, held):
    convs = [Conversation(f"conv-{i:03d}", ()) for i in range(n)]
    for seed in (0, 1, 42):
        train, val = split_conversations(convs, fraction, seed=seed)
        assert (len(train), len(val)) == (n - held, held)


def test_the_split_is_stable_for_a_file_and_seed_and_moves_with_the_seed():
    convs = [Conversation(f"conv-{i:03d}", ()) for i in range(60)]
    held = lambda seed: [c.id for c in split_conversations(convs, 0.2, seed=seed)[1]]  # noqa: E731
    assert held(42) == held(42) == [c.id for c in split_conversations(convs[::-1], 0.2, seed=42)[1]][::-1]
    assert held(42) != held(43)


def test_split_refuses_bad_fractions_and_too_few_conversations(sample):
    with pytest.raises(ConfigError):
        split_conversations(sample.conversations, 1.0)
    with pytest.raises(ConfigError, match="at least 2 conversations"):
        split_conversations(sample.conversations[:1], 0.2)
    assert split_conversations(sample.conversations[:1], 0.0)[1] == []


def test_minimum_quality_drops_low_scored_pairs(sample):
    kept = min_quality(sample, 4)
    assert len(kept.examples) == 35 and kept.skipped_low_quality == 5
    assert all(e.quality_score >= 4 for e in kept.examples)


def test_statistics_count_pairs_tokens_and_distributions(sample):
    s = describe(sample)
    assert (s["conversations"], s["pairs"], s["trainable_pairs"], s["skipped_null_targets"]) == (14, 43, 40, 3)
    assert s["scaffolding"]["persona_key"] == {"anxious_planner": 5, "overwhelmed_avoider": 5,
                                               "pragmatic_optimist": 4}
    assert sum(s["quality_scores"].values()) == 40
    assert s["folding"]["sequences"] == 14 and s["folding"]["folded_pairs"] == 40
    assert s["tokens"]["folded"] < s["tokens"]["unfolded"] / 1.5
