"""The request schemas, one per request body or query, strict: wrong types and unknown fields
are refused. The JSON API and the console validate with these same schemas, so both accept
exactly the same requests; the HTTP side of reading a request is ``control/api/requests.py``."""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from shared.job_input import Method, PresetName, overrides_model, whole_number
from shared.presets import DEFAULT_PRESET

# ------------------------------------------------------------------ bounds of every integer
SAFE_INT = 2**53          # ids and cursors: exact in every JSON reader, within BIGINT
MAX_STEP = 2**31 - 1      # a step number: steps are stored as INTEGER
MAX_PAGE = 1_000_000      # a page of a listing (the console clamps to it)
MAX_ATTEMPT = 1000        # a job's attempt number


# ------------------------------------------------------------------ text
_ONE_LINE = r"^[^\u0000-\u001f\u007f-\u009f]*$"
_MULTILINE = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"


def control_character(value: str, allowed: str = "") -> int | None:
    """The position of the first control character (or lone surrogate) of ``value`` that is
    not in ``allowed``, or None.

    >>> control_character("a\\tb"), control_character("a\\tb", "\\t"), control_character("\\x7f")
    (1, None, 0)
    """
    return next((i for i, ch in enumerate(value)
                 if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs")), None)


def control_character_message(value: str, position: int, multiline: bool = False) -> str:
    return (f"must not contain control characters{' other than newlines and tabs' if multiline else ''}"
            f" (U+{ord(value[position]):04X} at position {position})")


def _plain(allowed: str):
    def check(value: str) -> str:
        i = control_character(value, allowed)
        if i is not None:
            raise PydanticCustomError("control_character",
                                      control_character_message(value, i, bool(allowed)))
        return value
    return check


def Text(max_length: int, *, min_length: int = 0, multiline: bool = False):
    """A text field of a request: at most ``max_length`` characters, and no NUL or other
    control character (Postgres refuses NUL in text; the rest only hides what a name says).
    ``multiline`` text (descriptions, notes) may hold newlines (``\\n``, a form's ``\\r\\n``)
    and tabs. The JSON Schema carries the same rule as a ``pattern``.

    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(Text(20)).validate_python("run 1")
    'run 1'
    >>> try:
    ...     TypeAdapter(Text(20)).validate_python("run\\x001")
    ... except ValueError as exc:
    ...     print(exc.errors()[0]["msg"])
    must not contain control characters (U+0000 at position 3)
    >>> TypeAdapter(Text(20, multiline=True)).validate_python("line 1\\r\\n\\tline 2")
    'line 1\\r\\n\\tline 2'
    """
    return Annotated[str, Field(min_length=min_length, max_length=max_length,
                                json_schema_extra={"pattern": _MULTILINE if multiline else _ONE_LINE}),
                     AfterValidator(_plain("\n\r\t" if multiline else ""))]


# ------------------------------------------------------------------ numbers and dates
WholeNumber = BeforeValidator(whole_number)     # a body's ``90.0`` is the integer 90
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_datetime(value):
    """A query's date or datetime in ISO 8601 (a date is its midnight, UTC; a datetime
    without an offset is UTC); never a bare number, which would be read as a Unix time.

    >>> _iso_datetime("2024-05-01"), _iso_datetime("2024-05-01T12:30:00+02:00").hour
    (datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.timezone.utc), 12)
    >>> _iso_datetime("0.5")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.PydanticCustomError: expected an ISO 8601 date or datetime (2024-05-01 or 2024-05-01T12:00:00Z), got '0.5'
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        parsed = None
        if isinstance(value, str) and not _NUMBER.fullmatch(value):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                pass
        if parsed is None:
            raise PydanticCustomError(
                "iso_datetime", "expected an ISO 8601 date or datetime (2024-05-01 or "
                "2024-05-01T12:00:00Z), got {value}", {"value": repr(value)})
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_datetime)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# Single settings over the preset's, by the documents' names: every overridable setting of
# ``shared.job_input`` (OVERRIDABLE), with the job input's bounds and descriptions.
HyperparameterOverrides = overrides_model(
    "HyperparameterOverrides", base=_Strict,
    doc="Single settings over the preset's, by the documents' names.")


class GpuChoice(_Strict):
    type: Text(32, min_length=1) | None = None
    pricing: Literal["spot", "on_demand"] = "spot"


class ContinueFrom(_Strict):
    """Start from another job's checkpoint: its adapter weights, this job's own plan."""

    job_id: Text(64, min_length=1)
    step: Annotated[int, Field(ge=1, le=MAX_STEP), WholeNumber]


class EvaluationRequest(_Strict):
    """How the job's adapter is evaluated (``shared.job_input.EvaluationSettings``)."""

    size: Annotated[Literal["quick", "full", "perplexity"] | None, Field(description=(
        "quick: a sample of each suite; full: all of it (the default on a GPU); perplexity: "
        "only the held-out perplexity, no answers generated"))] = None
    max_new_tokens: Annotated[int, Field(ge=1, le=2048, description=(
        "the longest answer each model generates")), WholeNumber] = 256
    prompts_file_id: Annotated[Text(64, min_length=1) | None, Field(description=(
        "a training file of purpose 'evaluation': your own prompts, answered by both models"))] = None


class BudgetOverride(_Strict):
    """An admin's word that this job may pass the month's budget, and why (recorded, shown)."""

    reason: Text(500, min_length=3, multiline=True)


class StartJob(_Strict):
    budget_override: BudgetOverride | None = None


MAX_COST_USD = 100_000.0


class CreateJob(_Strict):
    training_file_id: Text(64, min_length=1)
    preset: PresetName = DEFAULT_PRESET
    hyperparameters: HyperparameterOverrides = HyperparameterOverrides()
    base_model: Text(255, min_length=1) | None = None
    method: Method | None = None
    gpu: GpuChoice = GpuChoice()
    name: Text(200, min_length=1) | None = None
    description: Text(5000, multiline=True) | None = None
    notes: Text(20000, multiline=True) | None = None
    tags: Annotated[list[Text(50, min_length=1)], Field(max_length=20)] = []
    start: bool = False
    continue_from: ContinueFrom | None = None
    evaluation: EvaluationRequest = EvaluationRequest()
    rubric_id: Annotated[Text(64, min_length=1) | None, Field(description=(
        "the brand-voice rubric its answers are scored on (GET /api/rubrics); unset: the documents' 10"))] = None
    max_cost_usd: Annotated[float | None, Field(gt=0, le=MAX_COST_USD, allow_inf_nan=False, description=(
        "the spend cap: when the projected cost passes it, the job checkpoints and stops (spend_cap)"))] = None
    budget_override: Annotated[BudgetOverride | None, Field(description=(
        "admins: start even though the estimate passes the month's budget, with the reason"))] = None
    template_id: Annotated[Text(64, min_length=1) | None, Field(description=(
        "start from a saved template (GET /api/training/templates): it fills every setting this "
        "request does not give; what the request gives wins"))] = None


class RetryJob(_Strict):
    """A new job from a finished one: its settings, the failure's suggested adjustment
    (``apply_adjustment``), single overrides on top, optionally continuing from one of its
    checkpoints (``from_checkpoint_step``)."""

    apply_adjustment: bool = True
    hyperparameters: HyperparameterOverrides = HyperparameterOverrides()
    from_checkpoint_step: Annotated[int, Field(ge=1, le=MAX_STEP), WholeNumber] | None = None
    name: Text(200, min_length=1) | None = None
    start: bool = False
    max_cost_usd: Annotated[float | None, Field(gt=0, le=MAX_COST_USD, allow_inf_nan=False, description=(
        "a new spend cap (unset: the finished job's)"))] = None


MAX_DURATION_MINUTES = 60 * 24 * 366     # a job's duration filter: at most a year
EXPORT_MAX_ROWS = 10_000                  # the jobs list as CSV: at most this many rows


def _at_least(low_field: str):
    """The upper end of a range is refused below its lower end, naming the upper end."""
    def check(value, info: ValidationInfo):
        low = info.data.get(low_field)
        if value is not None and low is not None and value < low:
            raise PydanticCustomError("range", f"must be at least {low_field} ({low:g}), got {value:g}")
        return value
    return check


def _amount(maximum: float, what: str):
    return Annotated[float | None, Field(ge=0, le=maximum, allow_inf_nan=False, description=what)]


class JobListQuery(_Strict):
    model_config = ConfigDict(extra="forbid")   # query strings are text: coerce
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    per_page: Annotated[int, Field(ge=1, le=200)] = 50
    status: Text(500) | None = None
    created_by: Text(64) | None = None
    created_after: IsoDatetime | None = None
    created_before: IsoDatetime | None = None
    preset: PresetName | None = None
    tag: Text(50) | None = None
    training_file_id: Annotated[Text(64, min_length=1) | None, Field(description=(
        "the dataset: only jobs trained on this training file"))] = None
    cost_min: _amount(MAX_COST_USD, "actual cost at least this many dollars") = None
    cost_max: _amount(MAX_COST_USD, "actual cost at most this many dollars") = None
    duration_min: _amount(MAX_DURATION_MINUTES, "ran at least this many minutes (finished jobs)") = None
    duration_max: _amount(MAX_DURATION_MINUTES, "ran at most this many minutes (finished jobs)") = None
    delivery: Annotated[Literal["approved", "rejected", "none", "not_approved"] | None, Field(description=(
        "approved or rejected for delivery (the newest decision); none: not decided yet; "
        "not_approved: rejected or not decided"))] = None
    for_review: Annotated[bool, Field(description=(
        "reviewers: every user's completed jobs waiting for a delivery decision"))] = False
    q: Text(200) | None = None
    sort: Annotated[Literal["newest", "oldest", "name", "status", "cost", "progress", "duration",
                            "perplexity_gain"], Field(description=(
        "cost, duration: highest first; perplexity_gain: the best first, jobs without one last"))] = "newest"
    format: Annotated[Literal["json", "csv"], Field(description=(
        "csv: every matching job in the sort's order (page and per_page do not apply), at most "
        f"{EXPORT_MAX_ROWS:,} rows; X-Total-Count and X-Export-Truncated say when it is cut"))] = "json"

    _cost_range = field_validator("cost_max")(_at_least("cost_min"))
    _duration_range = field_validator("duration_max")(_at_least("duration_min"))


class SamplesQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    suite: Literal["heldout", "ei", "custom"] = "heldout"
    category: Text(64) | None = None
    run: Text(64) | None = None
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=50)] = 10


class EvaluationQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    run: Text(64) | None = None


class MetricsQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    since_step: Annotated[int, Field(ge=0, le=MAX_STEP)] | None = None
    max_points: Annotated[int, Field(ge=2, le=20000)] = 1000


class EventsQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    after_id: Annotated[int, Field(ge=0, le=SAFE_INT)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 200
    type: Text(200) | None = None
    attempt: Annotated[int, Field(ge=1, le=MAX_ATTEMPT)] | None = None


class _CostQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    training_file_id: Text(64, min_length=1)
    preset: PresetName = DEFAULT_PRESET
    base_model: Text(255) | None = None
    method: Method | None = None
    gpu_type: Text(32) | None = None
    pricing: Literal["spot", "on_demand"] = "spot"


# The single settings an estimate takes (the ones that change its steps), after the rest.
COST_SETTINGS = ("num_epochs", "batch_size", "gradient_accumulation_steps", "lora_r", "max_steps")
CostQuery = overrides_model("CostQuery", COST_SETTINGS, base=_CostQuery)


class CreateToken(_Strict):
    """A new API token: a label, and a lifetime in days (none: until revoked)."""

    name: Text(200, min_length=1) | None = None
    expires_in_days: Annotated[int, Field(ge=1, le=3650), WholeNumber] | None = None


# ----------------------------------------------------------------- review and delivery

Score = Annotated[int, Field(ge=1, le=5), WholeNumber]


class ReviewQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    suite: Literal["ei", "brand_voice"] = "ei"
    position: Annotated[int, Field(ge=1, le=10_000, description=(
        "the item at this place in your own order; unset: the first you have not scored"))] | None = None


class EIAnswerScores(_Strict):
    empathy: Score
    clarity: Score
    appropriateness: Score


class ReviewRequest(_Strict):
    """One item's scores. The emotional-intelligence suite: ``answers`` (A and B, as shown)
    and ``preference``; brand voice: ``scores`` on each characteristic of the job's rubric."""

    suite: Literal["ei", "brand_voice"]
    item_id: Text(128, min_length=1)
    run: Annotated[Text(64, min_length=1) | None, Field(description=(
        "the evaluation the item came from (``run`` of reviews/next): refused if it changed"))] = None
    answers: dict[Literal["A", "B"], EIAnswerScores] | None = None
    preference: Literal["A", "B", "tie"] | None = None
    scores: Annotated[dict[Text(64, min_length=1), Score], Field(max_length=50)] | None = None


class DecisionRequest(_Strict):
    decision: Literal["approved", "rejected"]
    reason: Annotated[Text(2000, min_length=1, multiline=True), Field(description=(
        "why; approving with a target not met must name that measure"))]


class ShareRequest(_Strict):
    expires_in_days: Annotated[int, Field(ge=1, le=90, description="how long the link works (1-90 days)"),
                               WholeNumber] = 30


class CharacteristicIn(_Strict):
    name: Text(100, min_length=1)
    description: Text(1000, min_length=1, multiline=True)


class CreateRubric(_Strict):
    name: Text(200, min_length=1)
    client: Text(200, min_length=1) | None = None
    characteristics: Annotated[list[CharacteristicIn], Field(min_length=1, max_length=20)]
