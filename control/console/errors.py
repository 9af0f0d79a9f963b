"""The console's error pages: what went wrong and what to do next, never a traceback."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from control.console.blueprint import bp
from control.services.exceptions import BudgetExceeded, Conflict, Forbidden, JobStateError, NotFound, QuotaExceeded

NEXT_STEPS = {
    400: "Go back, reload the page and try again.",
    404: "It may have been deleted, or it belongs to someone else. Start again from the jobs list.",
    405: "Use the page's buttons rather than typing the address.",
    413: "The file is larger than the upload limit. Split the dataset, or ask an admin to raise DATASET_MAX_BYTES.",
    500: "This has been logged. Try again in a minute; if it keeps happening, tell the platform team.",
}


def error_page(exc: HTTPException | None):
    status = exc.code if exc is not None and exc.code else 500
    title = exc.name if exc is not None else "Internal error"
    message = exc.description if exc is not None else "Something went wrong on our side."
    if isinstance(exc, CSRFError):
        title = "This form has expired"
        message = ("The form was sent without its security token, or with one from another "
                   "session (for example after you signed out).")
        hint = "Reload the page and send the form again."
    else:
        hint = NEXT_STEPS.get(status, NEXT_STEPS[400] if status < 500 else NEXT_STEPS[500])
    return render_template("console/error.html", status=status, title=title, message=message,
                           hint=hint), status


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return render_template("console/error.html", status=404, title="Not found", message=str(exc),
                           hint=NEXT_STEPS[404]), 404


@bp.errorhandler(JobStateError)
def _wrong_state(exc: JobStateError):
    """An action the job's state no longer allows (it finished meanwhile): say so on its page."""
    flash(exc.message, "error")
    job_id = (request.view_args or {}).get("job_id")
    return redirect(url_for("console.job_detail", job_id=job_id) if job_id else url_for("console.job_list"))


@bp.errorhandler(BudgetExceeded)
@bp.errorhandler(QuotaExceeded)
def _over_quota(exc: QuotaExceeded | BudgetExceeded):
    """A quota reached (starting a job, creating one): the limit and what to do, on the job's
    page or the new-job form."""
    flash(exc.message, "error")
    job_id = (request.view_args or {}).get("job_id")
    return redirect(url_for("console.job_detail", job_id=job_id) if job_id else url_for("console.new_job"))


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    """A role that may not do this (review, decide, manage rubrics): the 403 page says who may."""
    return render_template("console/error.html", status=403, title="Not for your role",
                           message=exc.message[:1].upper() + exc.message[1:] + ".",
                           hint="Ask an admin: they can give you the role, or do it for you."), 403


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict):
    """What the job's state does not allow yet (no completed evaluation to review, say)."""
    return render_template("console/error.html", status=409, title="Not possible yet",
                           message=exc.message[:1].upper() + exc.message[1:] + ".",
                           hint="Come back once the job has completed and its evaluation has landed."), 409
