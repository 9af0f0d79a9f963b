"""The three evaluation suites, shipped as data next to this module, and their schemas.

- ``emotional_intelligence.json``: 50 client scenarios, 10 in each of five categories, whose
  answers people score 1-5 on empathy, clarity and appropriateness.
- ``financial_knowledge.json``: 100 multiple-choice questions, 20 on each of five topics,
  with 25 answers on each letter (5 per letter within a topic): the forgetting check.
- ``brand_voice.json``: the rubric of 10 characteristics scored 1-5.

Each file is validated when it is first loaded (strict, unknown fields refused) and cached;
a file that breaks its schema raises :class:`SuiteError` naming the file and the field.
Samples are deterministic and stratified: ``quick`` takes the first items of each category
or topic in file order, ``full`` takes everything. README.md says where the text came from.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from shared.errors import ProblemsError
from shared.validation import problems_from

Category = Literal["emotional_awareness", "empathy", "supportive_response", "de_escalation",
                   "celebrating_progress"]
ClientState = Literal["anxious", "overwhelmed", "confused", "optimistic", "frustrated", "ashamed"]
CriterionId = Literal["empathy", "clarity", "appropriateness"]
Topic = Literal["taxes", "retirement", "investing", "insurance", "budgeting_debt"]
Letter = Literal["A", "B", "C", "D"]
CharacteristicId = Literal["warmth", "directness", "education_first", "empathy", "optimism",
                           "pragmatism", "non_judgmental", "celebrating_progress",
                           "values_alignment", "financial_literacy"]
Anchor = Literal["1", "3", "5"]
SampleSize = Literal["quick", "full"]

CATEGORIES: tuple[str, ...] = get_args(Category)
CLIENT_STATES: tuple[str, ...] = get_args(ClientState)
CRITERIA: tuple[str, ...] = get_args(CriterionId)
TOPICS: tuple[str, ...] = get_args(Topic)
LETTERS: tuple[str, ...] = get_args(Letter)
CHARACTERISTICS: tuple[str, ...] = get_args(CharacteristicId)
ANCHORS: tuple[str, ...] = get_args(Anchor)
SAMPLE_SIZES: tuple[str, ...] = get_args(SampleSize)
QUICK_PER_CATEGORY = 2
QUICK_PER_TOPIC = 4
ANSWER_INSTRUCTION = "Answer with the letter of the correct option only."

_T = TypeVar("_T")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]


class SuiteError(ProblemsError):
    """A shipped suite file that does not follow its schema: the package is broken."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Suite(_Strict):
    version: Text
    licence: Text
    provenance: Text


def _duplicates(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, in order of first appearance.

    >>> _duplicates(["a", "b", "a", "c", "b", "a"])
    ['a', 'b']
    """
    counts = Counter(values)
    return [v for v in counts if counts[v] > 1]


def _require_unique(values: Iterable[str], what: str) -> None:
    repeated = _duplicates(values)
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: " + ", ".join(repr(v) for v in repeated))


def _require_exactly(found: Iterable[str], expected: tuple[str, ...], what: str) -> None:
    found = tuple(found)
    if found != expected:
        raise ValueError(f"{what} must be exactly {', '.join(expected)} in that order; "
                         f"got {', '.join(found) or 'none'}")


def _stratified(items: list[_T], key, per_group: int, size: str) -> list[_T]:
    """All items (``full``) or the first ``per_group`` of each group (``quick``), in file order."""
    if size == "full":
        return list(items)
    if size != "quick":
        raise ValueError(f"unknown sample size {size!r}: expected one of {', '.join(SAMPLE_SIZES)}")
    taken: Counter[str] = Counter()
    chosen = []
    for item in items:
        if taken[key(item)] < per_group:
            taken[key(item)] += 1
            chosen.append(item)
    return chosen


def _require_per_group(items: Iterable, key, groups: tuple[str, ...], at_least: int,
                       what: str) -> None:
    counts = Counter(key(item) for item in items)
    short = [f"{g!r} has {counts[g]}" for g in groups if counts[g] < at_least]
    if short:
        raise ValueError(f"every {what} needs at least {at_least} items for the quick sample; "
                         + ", ".join(short))


# ------------------------------------------------------------------ emotional intelligence

class Criterion(_Strict):
    """One dimension people score each answer on, 1-5."""

    id: CriterionId
    description: Text


class Scenario(_Strict):
    """A client's situation and message, and what a good reply does (for the reviewers)."""

    id: Annotated[str, Field(pattern=r"^ei-\d{3}$")]
    category: Category
    client_state: ClientState
    context: Text
    message: Text
    good_reply: Annotated[list[Text], Field(min_length=2, max_length=4)]

    def user_message(self) -> str:
        """The user turn the model answers: a bracketed context line, a blank line, then the
        client's own words.

        >>> s = Scenario(id="ei-999", category="empathy", client_state="anxious",
        ...              context="Sam, 40, was laid off.", message="What do I do now?",
        ...              good_reply=["acknowledges the loss", "asks one question"])
        >>> print(s.user_message())
        (Context: Sam, 40, was laid off.)
        <BLANKLINE>
        What do I do now?
        """
        return f"(Context: {self.context})\n\n{self.message}"


class EmotionalIntelligenceSuite(_Suite):
    suite: Literal["emotional_intelligence"]
    system_prompt: Text
    criteria: Annotated[list[Criterion], Field(min_length=1)]
    scenarios: Annotated[list[Scenario], Field(min_length=1)]

    @field_validator("criteria")
    @classmethod
    def _the_three_criteria(cls, criteria: list[Criterion]) -> list[Criterion]:
        _require_exactly((c.id for c in criteria), CRITERIA, "criteria ids")
        return criteria

    @field_validator("scenarios")
    @classmethod
    def _distinct_and_stratified(cls, scenarios: list[Scenario]) -> list[Scenario]:
        _require_unique((s.id for s in scenarios), "scenario ids")
        _require_unique((s.message for s in scenarios), "scenario messages")
        _require_per_group(scenarios, lambda s: s.category, CATEGORIES, QUICK_PER_CATEGORY,
                           "category")
        return scenarios

    def sample(self, size: SampleSize) -> list[Scenario]:
        """``full``: every scenario in file order; ``quick``: the first 2 of each category,
        in file order.

        >>> suite = emotional_intelligence()
        >>> len(suite.sample("full")), len(suite.sample("quick"))
        (50, 10)
        >>> sorted(set(s.category for s in suite.sample("quick"))) == sorted(CATEGORIES)
        True
        """
        return _stratified(self.scenarios, lambda s: s.category, QUICK_PER_CATEGORY, size)


# ------------------------------------------------------------------ financial knowledge

class Question(_Strict):
    """A multiple-choice question with options A-D and exactly one correct letter.

    ``answer`` is a letter and ``options`` holds exactly the four letters, so the answer is
    always one of the option keys.
    """

    id: Annotated[str, Field(pattern=r"^fk-\d{3}$")]
    topic: Topic
    question: Text
    options: dict[Letter, Text]
    answer: Letter

    @field_validator("options")
    @classmethod
    def _four_distinct_options(cls, options: dict[str, str]) -> dict[str, str]:
        _require_exactly(options, LETTERS, "options")
        _require_unique(options.values(), "option texts")
        return options

    def prompt(self) -> str:
        """The user turn: the question, each option on its own line, then the instruction.
        The evaluation compares the likelihoods of the letters as the next token.

        >>> q = Question(id="fk-999", topic="investing", question="What is 2 + 2?",
        ...              options={"A": "3", "B": "4", "C": "5", "D": "22"}, answer="B")
        >>> print(q.prompt())
        What is 2 + 2?
        A. 3
        B. 4
        C. 5
        D. 22
        Answer with the letter of the correct option only.
        """
        lines = [self.question, *(f"{letter}. {self.options[letter]}" for letter in LETTERS),
                 ANSWER_INSTRUCTION]
        return "\n".join(lines)


class FinancialKnowledgeSuite(_Suite):
    suite: Literal["financial_knowledge"]
    note: Text
    questions: Annotated[list[Question], Field(min_length=1)]

    @field_validator("questions")
    @classmethod
    def _distinct_and_stratified(cls, questions: list[Question]) -> list[Question]:
        _require_unique((q.id for q in questions), "question ids")
        _require_unique((q.question for q in questions), "question texts")
        _require_per_group(questions, lambda q: q.topic, TOPICS, QUICK_PER_TOPIC, "topic")
        return questions

    def sample(self, size: SampleSize) -> list[Question]:
        """``full``: every question in file order; ``quick``: the first 4 of each topic, in
        file order.

        >>> suite = financial_knowledge()
        >>> len(suite.sample("full")), len(suite.sample("quick"))
        (100, 20)
        """
        return _stratified(self.questions, lambda q: q.topic, QUICK_PER_TOPIC, size)


# ------------------------------------------------------------------ brand voice

class Scale(_Strict):
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> "Scale":
        if self.min >= self.max:
            raise ValueError(f"scale min ({self.min}) must be below max ({self.max})")
        return self


class Characteristic(_Strict):
    """One trait of the brand voice, with what a 1, a 3 and a 5 look like."""

    id: CharacteristicId
    name: Text
    description: Text
    anchors: dict[Anchor, Text]

    @field_validator("anchors")
    @classmethod
    def _three_anchors(cls, anchors: dict[str, str]) -> dict[str, str]:
        _require_exactly(anchors, ANCHORS, "anchors")
        return anchors


class BrandVoiceRubric(_Suite):
    suite: Literal["brand_voice"]
    scale: Scale
    target_average: float
    flag_below: int
    responses_to_score: Annotated[int, Field(ge=1)]
    characteristics: list[Characteristic]

    @field_validator("characteristics")
    @classmethod
    def _the_ten_characteristics(cls, characteristics: list[Characteristic]) -> list[Characteristic]:
        ids = [c.id for c in characteristics]
        _require_unique(ids, "characteristic ids")
        missing = [c for c in CHARACTERISTICS if c not in ids]
        if missing:
            raise ValueError("characteristics missing: " + ", ".join(missing))
        return characteristics

    @model_validator(mode="after")
    def _on_the_scale(self) -> "BrandVoiceRubric":
        for name in ("target_average", "flag_below"):
            value = getattr(self, name)
            if not self.scale.min <= value <= self.scale.max:
                raise ValueError(f"{name} ({value}) must lie on the scale "
                                 f"{self.scale.min}-{self.scale.max}")
        return self


# ------------------------------------------------------------------ loaders

def parse(model: type[_T], text: str, source: str) -> _T:
    """Validate a suite file's text against its model; every problem names ``source``.

    >>> try:
    ...     parse(BrandVoiceRubric, '{"suite": "brand_voice", "version": "1.0"}', "x.json")
    ... except SuiteError as exc:
    ...     print(exc.problems[0])
    x.json > field "licence": Field required
    """
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise SuiteError(problems_from(exc, source), source=source) from None


def _load(model: type[_T], name: str) -> _T:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return parse(model, text, name)


@cache
def emotional_intelligence() -> EmotionalIntelligenceSuite:
    """The 50 scenarios (``emotional_intelligence.json``), validated once."""
    return _load(EmotionalIntelligenceSuite, "emotional_intelligence.json")


@cache
def financial_knowledge() -> FinancialKnowledgeSuite:
    """The 100 questions (``financial_knowledge.json``), validated once."""
    return _load(FinancialKnowledgeSuite, "financial_knowledge.json")


@cache
def brand_voice() -> BrandVoiceRubric:
    """The brand-voice rubric (``brand_voice.json``), validated once."""
    return _load(BrandVoiceRubric, "brand_voice.json")
