"""Malformed datasets: every problem reported at once, each naming its place."""
from __future__ import annotations

import pytest

from shared.dataset import load_dataset, parse_bytes
from shared.errors import DatasetError


def problems_of(path_or_bytes, **kw):
    with pytest.raises(DatasetError) as info:
        if isinstance(path_or_bytes, bytes):
            parse_bytes(path_or_bytes, name="data.json", **kw)
        else:
            load_dataset(path_or_bytes, **kw)
    return info.value


def test_the_sample_dataset_is_valid(sample_doc, write_json):
    ds = load_dataset(write_json(sample_doc))
    assert len(ds.conversations) == 14
    assert ds.pairs_total == 43
    assert ds.skipped_null_targets == 3
    assert len(ds.examples) == 40
    assert ds.warnings == []


def test_null_targets_are_skipped_and_counted_but_a_missing_target_is_an_error(sample_doc, write_json):
    pair = sample_doc["conversations"][0]["training_pairs"][1]
    pair["target_response"] = None
    ds = load_dataset(write_json(sample_doc))
    assert ds.skipped_null_targets == 4
    del pair["target_response"]
    err = problems_of(write_json(sample_doc))
    [p] = err.problems
    assert p.field == "target_response"
    assert 'conversation 1 (id "conv-001") > pair 2 (id "conv-001-t2")' == p.where
    assert "missing" in p.message


def test_it_reports_every_problem_with_conversation_pair_and_field(sample_doc, write_json):
    convs = sample_doc["conversations"]
    del convs[0]["training_pairs"][0]["current_user_input"]            # missing field
    convs[2]["training_pairs"][1]["target_response"] = 42               # wrong type
    convs[3]["training_pairs"][1]["conversation_history"][0]["role"] = "bot"   # unknown role
    convs[4]["training_pairs"][0]["training_metadata"]["quality_score"] = 9    # out of range
    convs[5]["training_pairs"] = []                                     # empty conversation
    err = problems_of(write_json(sample_doc))
    assert err.total == 5
    found = {(p.where, p.field) for p in err.problems}
    assert ('conversation 1 (id "conv-001") > pair 1 (id "conv-001-t1")', "current_user_input") in found
    assert ('conversation 3 (id "conv-003") > pair 2 (id "conv-003-t2")', "target_response") in found
    assert ('conversation 4 (id "conv-004") > pair 2 (id "conv-004-t2")',
            "conversation_history[0].role") in found
    assert ('conversation 5 (id "conv-005") > pair 1 (id "conv-005-t1")',
            "training_metadata.quality_score") in found
    assert ('conversation 6 (id "conv-006")', "training_pairs") in found
    text = str(err)
    assert "5 problems found" in text
    assert "unknown role 'bot'" in text and "expected a non-empty string or null, got number" in text


def test_it_rejects_a_wrong_format_spec(sample_doc, write_json):
    sample_doc["training_file_metadata"]["format_spec"] = "brightrun-lora-v3"
    [p] = problems_of(write_json(sample_doc)).problems
    assert p.field == "format_spec" and "brightrun-lora-v3" in p.message


def test_it_rejects_an_empty_conversation_list(sample_doc, write_json):
    sample_doc["conversations"] = []
    [p] = problems_of(write_json(sample_doc)).problems
    assert p.field == "conversations" and "empty" in p.message


def test_it_rejects_wrong_types_at_the_top(write_json):
    err = problems_of(write_json({"training_file_metadata": "x", "conversations": {}}))
    assert {p.field for p in err.problems} == {"training_file_metadata", "conversations"}
    [p] = problems_of(write_json([1, 2])).problems
    assert "expected a JSON object, got array" in p.message


def test_truncated_json_gets_line_and_column(sample_text, write_json):
    cut = sample_text[: len(sample_text) // 2]
    [p] = problems_of(write_json(cut)).problems
    lines = cut.count("\n") + 1
    assert p.where.startswith(f"line {lines}, column ")
    assert "invalid JSON" in p.message and "truncated" in p.message


def test_a_syntax_error_in_the_middle_names_its_line(write_json):
    [p] = problems_of(write_json('{\n  "conversations": [\n    {"a": 1,,}\n  ]\n}')).problems
    assert p.where == "line 3, column 13"


def test_an_empty_file_is_refused(write_json):
    [p] = problems_of(write_json("  \n")).problems
    assert p.message == "the file is empty"


def test_a_file_far_larger_than_any_dataset_is_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:          # sparse: 150 MB on paper, nothing on disk
        fh.truncate(150 * 1024 * 1024)
    [p] = problems_of(huge).problems
    assert "larger than the 105 MB limit" in p.message


def test_binary_junk_is_not_utf8(write_json, tmp_path):
    path = tmp_path / "junk.json"
    path.write_bytes(b'{"a": "\xff\xfe"}')
    [p] = problems_of(path).problems
    assert "not UTF-8" in p.message


def test_duplicate_ids_are_reported(sample_doc, write_json):
    convs = sample_doc["conversations"]
    convs[1]["conversation_metadata"]["conversation_id"] = "conv-001"
    convs[2]["training_pairs"][0]["id"] = convs[2]["training_pairs"][1]["id"]
    err = problems_of(write_json(sample_doc))
    messages = [str(p) for p in err.problems]
    assert any("duplicate conversation id, also used by conversation 1" in m for m in messages)
    assert any("duplicate pair id" in m for m in messages)


def test_a_dataset_with_only_null_targets_has_nothing_to_train(sample_doc, write_json):
    for conv in sample_doc["conversations"]:
        for pair in conv["training_pairs"]:
            pair["target_response"] = None
    [p] = problems_of(write_json(sample_doc)).problems
    assert "nothing to train on" in p.message


def test_metadata_count_mismatch_is_a_warning_not_an_error(sample_doc, write_json):
    sample_doc["training_file_metadata"]["total_training_pairs"] = 1567
    ds = load_dataset(write_json(sample_doc))
    assert ds.warnings == ["training_file_metadata.total_training_pairs says 1567, the file holds 43"]


def test_many_problems_are_counted_all_and_listed_up_to_a_cap(sample_doc, write_json):
    pair = sample_doc["conversations"][0]["training_pairs"][0]
    sample_doc["conversations"] = [
        {"conversation_metadata": {"conversation_id": f"c{i}"},
         "training_pairs": [{**pair, "id": f"c{i}-p", "current_user_input": None}]}
        for i in range(500)]
    err = problems_of(write_json(sample_doc))
    assert err.total == 500 and len(err.problems) == 200
    assert "500 problems found" in str(err) and "(first 200 shown)" in str(err)
