"""``/share/<token>`` and ``/share/<token>/report.pdf``: a share link's page and its PDF."""
from __future__ import annotations

import limits
from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask_limiter import Limiter, RateLimitExceeded

from control.services import report_versions, share_links
from control.services.exceptions import Conflict, NotFound

bp = Blueprint("public", __name__, template_folder="templates")

# The report page styles itself inline and runs no script at all.
PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
PRIVATE = {"Cache-Control": "no-store, private", "X-Robots-Tag": "noindex, nofollow",
           "Referrer-Policy": "no-referrer"}


def limit_shares(limiter: Limiter, configured: str) -> None:
    """``SHARE_RATE_LIMIT`` per client address over the share pages: a link passed around
    cannot be used to load the service, and tokens cannot be guessed at speed."""
    try:
        limits.parse_many(configured)
    except ValueError:
        raise ValueError(f"SHARE_RATE_LIMIT: {configured!r} is not a rate limit; write it as "
                         "'60 per minute'") from None
    limiter.shared_limit(lambda: current_app.config["SHARE_RATE_LIMIT"], scope="share",
                         key_func=lambda: request.remote_addr or "-")(bp)


@bp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded):
    response = _plain(429, "Too many requests", "This address has opened shared reports too often. "
                      "Wait a minute and reload the page.")
    response.headers["Retry-After"] = "60"
    return response


def _plain(status: int, title: str, message: str) -> Response:
    body = render_template("public/gone.html", title=title, message=message)
    return Response(body, status=status, headers={**PRIVATE, "Content-Security-Policy": PAGE_POLICY},
                    mimetype="text/html")


@bp.errorhandler(NotFound)
def _no_such_link(exc: NotFound):
    return _plain(404, "Link not found", "This link does not exist. Check that it was copied whole.")


@bp.errorhandler(share_links.LinkGone)
def _gone(exc: share_links.LinkGone):
    what = "revoked by its owner" if exc.state == "revoked" else "past its expiry date"
    return _plain(410, f"This link has {'been revoked' if exc.state == 'revoked' else 'expired'}",
                  f"This report link is {what} and no longer opens. Ask the person who sent it for a new one.")


@bp.errorhandler(Conflict)
def _not_ready(exc: Conflict):
    return _plain(409, "The report is being prepared", "This report is not ready yet. "
                  "Reload this page in a minute.")


@bp.get("/share/<token>")
def shared_report(token):
    _, job = share_links.open_link(token)
    page = report_versions.html_of(job, pdf_url=url_for("public.shared_pdf", token=token))
    return Response(page, headers={**PRIVATE, "Content-Security-Policy": PAGE_POLICY}, mimetype="text/html")


@bp.get("/share/<token>/report.pdf")
def shared_pdf(token):
    _, job = share_links.open_link(token)
    row, pdf = report_versions.pdf_of(job)
    return Response(pdf, mimetype="application/pdf", headers={
        **PRIVATE, "Content-Disposition": f'inline; filename="validation-report-v{row.version}.pdf"'})
