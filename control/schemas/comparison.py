"""The query of a comparison of runs (``GET /api/training/jobs/compare`` and the console's
``/jobs/compare``): 2 to 4 job ids, each once, comma-separated."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from control.schemas import Text, _Strict

MIN_RUNS = 2
MAX_RUNS = 4
MAX_ID_LENGTH = 64
MAX_QUERY = 1000          # the whole list: room for a few too many, so the count is what is named


def parse_ids(value: str) -> list[str]:
    """The ids of a comma-separated list, stripped, empty pieces left out; refused when
    there are not 2 to 4, when one is given twice, or when one is too long.

    >>> parse_ids("tj_a, tj_b,tj_c,")
    ['tj_a', 'tj_b', 'tj_c']
    >>> parse_ids("tj_a")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.PydanticCustomError: compare 2 to 4 jobs: got 1 (tj_a)
    >>> parse_ids("a,b,c,d,e")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.PydanticCustomError: compare 2 to 4 jobs: got 5
    >>> parse_ids("tj_a,tj_b,tj_a")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.PydanticCustomError: tj_a is given twice: name each job once
    """
    ids = [piece.strip() for piece in value.split(",") if piece.strip()]
    if len(ids) < MIN_RUNS:
        got = f"got {len(ids)}" + (f" ({ids[0]})" if ids else "")
        raise PydanticCustomError("run_count", "compare {low} to {high} jobs: {got}",
                                  {"low": MIN_RUNS, "high": MAX_RUNS, "got": got})
    if len(ids) > MAX_RUNS:
        raise PydanticCustomError("run_count", "compare {low} to {high} jobs: got {n}",
                                  {"low": MIN_RUNS, "high": MAX_RUNS, "n": len(ids)})
    seen: set[str] = set()
    for ident in ids:
        if len(ident) > MAX_ID_LENGTH:
            raise PydanticCustomError("id_length", "{ident}...: a job id has at most {n} characters",
                                      {"ident": ident[:16], "n": MAX_ID_LENGTH})
        if ident in seen:
            raise PydanticCustomError("duplicate_id", "{ident} is given twice: name each job once", {"ident": ident})
        seen.add(ident)
    return ids


# What the document says a list looks like (2 to 4 ids of 1 to 64 characters, no spaces or
# control characters); the validator says what is wrong with one that is not.
_ID = r"[^,\s\u0000-\u001f\u007f-\u009f]{1,64}"
IDS_PATTERN = rf"^{_ID}(,{_ID}){{{MIN_RUNS - 1},{MAX_RUNS - 1}}}$"
_IDS = Annotated[Text(MAX_QUERY), Field(description=(
    f"{MIN_RUNS} to {MAX_RUNS} job ids, comma-separated, each once: ids=tj_a,tj_b,tj_c"),
    json_schema_extra={"pattern": IDS_PATTERN})]


class _CompareQuery(_Strict):
    model_config = ConfigDict(extra="forbid")      # query strings are text

    ids: _IDS

    @field_validator("ids")
    @classmethod
    def _two_to_four(cls, value: str) -> str:
        return ",".join(parse_ids(value))

    @property
    def job_ids(self) -> list[str]:
        return self.ids.split(",")


class CompareQuery(_CompareQuery):
    format: Annotated[Literal["json", "pdf"], Field(description=(
        "json: the comparison's figures; pdf: the same as a PDF (as compare.pdf)"))] = "json"


class ComparePdfQuery(_CompareQuery):
    """``compare.pdf``: only the ids."""
