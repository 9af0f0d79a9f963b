"""Request schemas of the jobs' history beyond the list (``JobListQuery`` is in
``control/schemas/__init__.py``): the trends of one dataset."""
from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from control.schemas import Text, _Strict

MAX_TREND_POINTS = 500


class TrendsQuery(_Strict):
    model_config = ConfigDict(extra="forbid")   # query strings are text: coerce
    training_file_id: Annotated[Text(64, min_length=1), Field(description="the dataset (a training file's id)")]
    limit: Annotated[int, Field(ge=1, le=MAX_TREND_POINTS, description=(
        f"the newest this many completed jobs (1-{MAX_TREND_POINTS})"))] = 100
