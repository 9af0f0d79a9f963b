"""What the jobs list adds to answer questions about the history: the choices of its
history filters (presets, datasets), the Export CSV bound, and the trends panel of a
dataset, shown when the list is filtered to one (``/jobs?training_file_id=...``)."""
from __future__ import annotations

from typing import get_args

from control.models import User
from control.models.training_file import FilePurpose
from control.schemas import JobListQuery
from control.services import job_export, trends
from control.services.exceptions import NotFound
from control.services.training_files import listed
from shared.evaluation.targets import PERPLEXITY_IMPROVEMENT_PCT
from shared.job_input import PresetName

PANEL_POINTS = 100          # the trends panel: the newest this many completed jobs
DATASET_CHOICES = 200       # the dataset filter lists the newest this many training files


def trends_panel(user: User, training_file_id: str | None) -> dict | None:
    """The dataset's trends, or None when the list is not filtered to one the user may see."""
    if not training_file_id:
        return None
    try:
        return trends.dataset_trends(user, training_file_id, PANEL_POINTS)
    except NotFound:
        return None


def list_extras(user: User, query: JobListQuery, total: int) -> dict:
    """The list page's history parts, for its template."""
    files = [(f.id, f.filename) for f in listed(user, FilePurpose.FINE_TUNE, limit=DATASET_CHOICES)]
    if query.training_file_id and query.training_file_id not in dict(files):
        files.append((query.training_file_id, query.training_file_id))
    return {"presets": get_args(PresetName), "datasets": files, "trends": trends_panel(user, query.training_file_id),
            "export_limit": job_export.MAX_ROWS, "export_cut": total > job_export.MAX_ROWS,
            "perplexity_target": PERPLEXITY_IMPROVEMENT_PCT}
