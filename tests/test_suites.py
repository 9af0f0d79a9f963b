"""The evaluation suites shipped as data: their counts, balance and shape, the stratified
samples, the prompts the models see, and a clear refusal of a malformed suite."""
from __future__ import annotations

import copy
import json
import re
from collections import Counter
from importlib import resources

import pytest
from pydantic import ValidationError

from shared import suites
from shared.suites import (CATEGORIES, CHARACTERISTICS, CLIENT_STATES, LETTERS, TOPICS,
                           BrandVoiceRubric, EmotionalIntelligenceSuite, FinancialKnowledgeSuite,
                           SuiteError)

FILES = ("emotional_intelligence.json", "financial_knowledge.json", "brand_voice.json")


def _raw(name: str) -> dict:
    return json.loads(resources.files("shared.suites").joinpath(name).read_text(encoding="utf-8"))


def _normalised(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


# ------------------------------------------------------------------ provenance

@pytest.mark.parametrize("name", FILES)
def test_it_ships_every_suite_with_its_licence_and_provenance(name):
    doc = _raw(name)
    assert doc["suite"] == name.removesuffix(".json")
    assert doc["version"] == "1.0"
    assert doc["licence"] == "CC-BY-4.0"
    assert "Written for BrightRun by its engineers (2026)" in doc["provenance"]
    assert "not drawn from any published test set" in doc["provenance"]


def test_the_readme_states_the_licence_provenance_and_samples():
    readme = resources.files("shared.suites").joinpath("README.md").read_text(encoding="utf-8")
    assert "Written for BrightRun by its engineers (2026), original text, not drawn from any " \
           "published test set; licensed CC BY 4.0." in " ".join(readme.split())
    for name in FILES:
        assert f"`{name}`" in readme
    assert "`quick`" in readme and "`full`" in readme


def test_the_loaders_validate_once_and_return_the_same_suite():
    assert suites.emotional_intelligence() is suites.emotional_intelligence()
    assert suites.financial_knowledge() is suites.financial_knowledge()
    assert suites.brand_voice() is suites.brand_voice()


# ------------------------------------------------------------------ emotional intelligence

def test_it_has_50_scenarios_10_per_category_with_ids_in_order():
    scenarios = suites.emotional_intelligence().scenarios
    assert [s.id for s in scenarios] == [f"ei-{i:03d}" for i in range(1, 51)]
    assert Counter(s.category for s in scenarios) == {c: 10 for c in CATEGORIES}


def test_every_category_mixes_at_least_three_client_states_and_every_state_appears():
    scenarios = suites.emotional_intelligence().scenarios
    for category in CATEGORIES:
        states = {s.client_state for s in scenarios if s.category == category}
        assert len(states) >= 3, (category, states)
    assert {s.client_state for s in scenarios} == set(CLIENT_STATES)


def test_no_two_client_messages_or_contexts_are_alike():
    scenarios = suites.emotional_intelligence().scenarios
    for field in ("message", "context"):
        texts = [_normalised(getattr(s, field)) for s in scenarios]
        assert len(set(texts)) == len(texts), field


def test_each_scenario_is_short_and_says_what_a_good_reply_does():
    for s in suites.emotional_intelligence().scenarios:
        sentences = [x for x in re.split(r"(?<=[.!?])\s+", s.message.strip()) if x]
        assert 1 <= len(sentences) <= 4, (s.id, sentences)
        assert 2 <= len(s.good_reply) <= 4, s.id
        assert len(set(s.good_reply)) == len(s.good_reply), s.id


def test_the_suite_carries_the_persona_and_the_three_scored_criteria():
    suite = suites.emotional_intelligence()
    assert [c.id for c in suite.criteria] == ["empathy", "clarity", "appropriateness"]
    assert all(c.description for c in suite.criteria)
    assert "financial-planning consultant" in suite.system_prompt
    assert len(suite.system_prompt.split(". ")) >= 3


def test_the_user_message_presents_the_context_then_the_clients_words():
    scenario = suites.emotional_intelligence().scenarios[0]
    text = scenario.user_message()
    assert text == f"(Context: {scenario.context})\n\n{scenario.message}"


# ------------------------------------------------------------------ financial knowledge

def test_it_has_100_questions_20_per_topic_with_ids_in_order():
    questions = suites.financial_knowledge().questions
    assert [q.id for q in questions] == [f"fk-{i:03d}" for i in range(1, 101)]
    assert Counter(q.topic for q in questions) == {t: 20 for t in TOPICS}


def test_each_question_has_four_distinct_options_and_one_answer_among_them():
    for q in suites.financial_knowledge().questions:
        assert tuple(q.options) == LETTERS, q.id
        assert q.answer in q.options, q.id
        texts = [_normalised(t) for t in q.options.values()]
        assert len(set(texts)) == 4, (q.id, texts)


def test_the_answer_letters_are_balanced_overall_and_within_each_topic():
    questions = suites.financial_knowledge().questions
    assert Counter(q.answer for q in questions) == {letter: 25 for letter in LETTERS}
    for topic in TOPICS:
        letters = Counter(q.answer for q in questions if q.topic == topic)
        assert letters == {letter: 5 for letter in LETTERS}, (topic, letters)


def test_no_question_is_asked_twice():
    texts = [_normalised(q.question) for q in suites.financial_knowledge().questions]
    assert len(set(texts)) == len(texts)


def test_the_correct_option_is_not_given_away_by_being_the_longest():
    questions = suites.financial_knowledge().questions
    longest = sum(max(q.options, key=lambda k: len(q.options[k])) == q.answer for q in questions)
    assert longest <= 25, longest          # no better than chance for "pick the longest"


def test_the_prompt_lists_the_question_then_the_four_options_in_order():
    q = suites.financial_knowledge().questions[3]
    lines = q.prompt().split("\n")
    assert lines[0] == q.question
    assert lines[1:5] == [f"{letter}. {q.options[letter]}" for letter in "ABCD"]
    assert lines[5:] == ["Answer with the letter of the correct option only."]


# ------------------------------------------------------------------ brand voice

def test_the_brand_voice_rubric_has_the_ten_characteristics_with_anchors_1_3_5():
    rubric = suites.brand_voice()
    assert [c.id for c in rubric.characteristics] == list(CHARACTERISTICS)
    assert list(CHARACTERISTICS) == ["warmth", "directness", "education_first", "empathy", "optimism",
                                     "pragmatism", "non_judgmental", "celebrating_progress",
                                     "values_alignment", "financial_literacy"]
    for c in rubric.characteristics:
        assert list(c.anchors) == ["1", "3", "5"], c.id
        assert c.name and c.description and len(set(c.anchors.values())) == 3, c.id


def test_the_brand_voice_targets_are_the_product_documents():
    rubric = suites.brand_voice()
    assert (rubric.scale.min, rubric.scale.max) == (1, 5)
    assert rubric.target_average == 4.25
    assert rubric.flag_below == 3
    assert rubric.responses_to_score == 30


# ------------------------------------------------------------------ samples

def test_the_full_samples_are_every_item_in_file_order():
    ei, fk = suites.emotional_intelligence(), suites.financial_knowledge()
    assert ei.sample("full") == ei.scenarios
    assert fk.sample("full") == fk.questions


@pytest.mark.parametrize("load, items, group, groups, per_group", [
    (suites.emotional_intelligence, "scenarios", "category", CATEGORIES, 2),
    (suites.financial_knowledge, "questions", "topic", TOPICS, 4)])
def test_the_quick_sample_is_the_first_few_of_each_group_in_file_order(load, items, group, groups, per_group):
    suite = load()
    quick = suite.sample("quick")
    every = getattr(suite, items)
    expected = {x.id for g in groups for x in [y for y in every if getattr(y, group) == g][:per_group]}
    assert len(quick) == per_group * len(groups)
    assert {x.id for x in quick} == expected
    assert [x.id for x in quick] == sorted(x.id for x in quick)
    assert Counter(getattr(x, group) for x in quick) == {g: per_group for g in groups}


def test_the_samples_are_the_same_every_time_and_refuse_an_unknown_size():
    suite = suites.financial_knowledge()
    assert [q.id for q in suite.sample("quick")] == [q.id for q in suite.sample("quick")]
    with pytest.raises(ValueError, match="unknown sample size 'medium'"):
        suite.sample("medium")


# ------------------------------------------------------------------ malformed suites

def _broken(name: str, path: tuple, value) -> dict:
    doc = copy.deepcopy(_raw(name))
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


_DELETE = object()
MODELS = {"emotional_intelligence.json": EmotionalIntelligenceSuite,
          "financial_knowledge.json": FinancialKnowledgeSuite,
          "brand_voice.json": BrandVoiceRubric}


@pytest.mark.parametrize("name, path, value, needles", [
    ("emotional_intelligence.json", ("scenarios", 4, "category"), "anger",
     ["scenarios.4.category", "'emotional_awareness'"]),
    ("emotional_intelligence.json", ("scenarios", 2, "client_state"), "sad",
     ["scenarios.2.client_state", "'ashamed'"]),
    ("emotional_intelligence.json", ("scenarios", 7, "id"), "ei-001",
     ["scenarios", "scenario ids must be unique", "'ei-001'"]),
    ("emotional_intelligence.json", ("scenarios", 0, "good_reply"), ["only one"],
     ["scenarios.0.good_reply", "at least 2"]),
    ("emotional_intelligence.json", ("scenarios", 0, "message"), "   ",
     ["scenarios.0.message", "must not be blank"]),
    ("emotional_intelligence.json", ("criteria", 1, "id"), "kindness",
     ["criteria.1.id", "'clarity'"]),
    ("emotional_intelligence.json", ("scenarios", 0, "mood"), "calm",
     ["scenarios.0.mood", "Extra inputs are not permitted"]),
    ("financial_knowledge.json", ("questions", 3, "options", "D"), _DELETE,
     ["questions.3.options", "exactly A, B, C, D", "got A, B, C"]),
    ("financial_knowledge.json", ("questions", 3, "options", "E"), "a fifth option",
     ["questions.3.options.E"]),
    ("financial_knowledge.json", ("questions", 5, "answer"), "E",
     ["questions.5.answer", "'A', 'B', 'C' or 'D'"]),
    ("financial_knowledge.json", ("questions", 9, "topic"), "crypto",
     ["questions.9.topic", "'budgeting_debt'"]),
    ("financial_knowledge.json", ("questions", 9, "id"), "fk-002",
     ["questions", "question ids must be unique", "'fk-002'"]),
    ("financial_knowledge.json", ("questions", 0, "answer"), 1,
     ["questions.0.answer"]),
    ("financial_knowledge.json", ("licence",), _DELETE,
     ["licence", "Field required"]),
    ("brand_voice.json", ("characteristics", 2, "anchors", "3"), _DELETE,
     ["characteristics.2.anchors", "exactly 1, 3, 5"]),
    ("brand_voice.json", ("characteristics", 0, "id"), "humour",
     ["characteristics.0.id", "'warmth'"]),
    ("brand_voice.json", ("responses_to_score",), "30",
     ["responses_to_score", "valid integer"]),
    ("brand_voice.json", ("target_average",), 6,
     ["target_average (6", "must lie on the scale 1-5"]),
])
def test_a_malformed_suite_is_refused_with_the_field_named(name, path, value, needles):
    with pytest.raises(ValidationError) as raised:
        MODELS[name].model_validate(_broken(name, path, value))
    message = str(raised.value)
    for needle in needles:
        assert needle in message, (needle, message)


def test_a_quick_sample_needs_every_category_represented_twice():
    doc = _raw("emotional_intelligence.json")
    doc["scenarios"] = [s for s in doc["scenarios"] if s["category"] != "de_escalation"]
    with pytest.raises(ValidationError, match="'de_escalation' has 0"):
        EmotionalIntelligenceSuite.model_validate(doc)


def test_a_broken_suite_file_names_the_file_and_every_problem():
    doc = _broken("financial_knowledge.json", ("questions", 1, "answer"), "E")
    doc["questions"][2]["topic"] = "crypto"
    with pytest.raises(SuiteError) as raised:
        suites.parse(FinancialKnowledgeSuite, json.dumps(doc), "financial_knowledge.json")
    error = raised.value
    assert error.total == 2
    assert str(error).startswith("2 problems found in financial_knowledge.json:")
    assert [p.field for p in error.problems] == ["questions.1.answer", "questions.2.topic"]


def test_a_suite_file_that_is_not_json_is_refused_with_its_name():
    with pytest.raises(SuiteError, match="brand_voice.json.*Invalid JSON"):
        suites.parse(BrandVoiceRubric, '{"suite": "brand_voice",', "brand_voice.json")
