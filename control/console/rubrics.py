"""Brand-voice rubrics (``/rubrics``): every user sees them (a new job picks one); admins
create one (a name, the client, one characteristic a line as ``Name: description``) and
archive one, which new jobs can then no longer pick while the jobs scored on it keep it."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.schemas import CreateRubric
from control.services import rubrics
from control.services.exceptions import Conflict
from shared.errors import ConfigError

EXAMPLE = ("Warmth: kind, personal and calm; addresses the client as a person\n"
           "Directness: answers the question early and plainly")


def characteristics_from_text(text: str) -> tuple[list[dict], list[str]]:
    """One characteristic a line, ``Name: description``; blank lines are skipped. Returns the
    characteristics and what is wrong, each naming its line.

    >>> characteristics_from_text("Warmth: kind and calm\\n\\nDirectness : answers early")[0]
    [{'name': 'Warmth', 'description': 'kind and calm'}, {'name': 'Directness', 'description': 'answers early'}]
    >>> characteristics_from_text("Warmth\\n: no name")[1]
    ['line 1: write it as "Name: description" (no colon found)', 'line 2: the characteristic needs a name before the colon']
    """
    found, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, description = line.partition(":")
        if not colon:
            problems.append(f'line {number}: write it as "Name: description" (no colon found)')
        elif not name.strip():
            problems.append(f"line {number}: the characteristic needs a name before the colon")
        elif not description.strip():
            problems.append(f"line {number}: {name.strip()!r} needs a description after the colon")
        else:
            found.append({"name": name.strip(), "description": description.strip()})
    return found, problems


def rubric_request(form) -> tuple[CreateRubric | None, list[str]]:
    """The form's ``CreateRubric``, or every problem with it in words.

    >>> rubric_request({"name": "Acme", "client": "", "characteristics": "Warmth: kind"})[0].client is None
    True
    >>> rubric_request({"name": "", "characteristics": ""})[1]
    ['Name: give the rubric a name', 'Characteristics: write at least one, as "Name: description"']
    """
    name = (form.get("name") or "").strip()
    items, lines = characteristics_from_text(form.get("characteristics") or "")
    problems = ["Name: give the rubric a name"] if not name else []
    if not items and not lines:
        lines = ['Characteristics: write at least one, as "Name: description"']
    problems += lines
    if problems:
        return None, problems
    try:
        return CreateRubric.model_validate({"name": name, "client": (form.get("client") or "").strip() or None,
                                            "characteristics": items}), []
    except ValidationError as exc:
        return None, [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]


def _where(loc) -> str:
    """
    >>> _where(("characteristics", 2, "name")), _where(("client",))
    ('Characteristic 3, name', 'Client')
    """
    if loc and loc[0] == "characteristics" and len(loc) >= 3:
        return f"Characteristic {int(loc[1]) + 1}, {loc[2]}"
    return str(loc[0]).capitalize() if loc else "Form"


def _page(status: int = 200, form: dict | None = None, problems: list[str] | None = None):
    return render_template("console/rubrics.html", rubrics=rubrics.all_rubrics(include_archived=g.user.is_admin),
                           form=form or {}, problems=problems or [], example=EXAMPLE,
                           default_id=rubrics.DEFAULT_ID), status


@bp.get("/rubrics")
def rubric_list():
    return _page()


@bp.post("/rubrics")
def create_rubric():
    """Create a rubric (admins); a refusal shows the form again with every problem and the text kept."""
    form = {k: request.form.get(k) or "" for k in ("name", "client", "characteristics")}
    req, problems = rubric_request(form)
    if req is None:
        return _page(400, form, problems)
    try:
        row = rubrics.create(g.user, req.name, [c.model_dump() for c in req.characteristics], req.client)
    except ConfigError as exc:
        return _page(400, form, [p.message if not p.where else f"{p.where}: {p.message}" for p in exc.problems])
    except Conflict as exc:
        return _page(409, form, [exc.message[:1].upper() + exc.message[1:] + "; choose another name."])
    flash(f"Rubric “{row.name}” created with {len(row.characteristics)} characteristics: "
          "new jobs can pick it.", "ok")
    return redirect(url_for("console.rubric_list"))


@bp.post("/rubrics/archive")
def archive_rubric():
    row = rubrics.archive(g.user, (request.form.get("rubric_id") or "").strip())
    flash(f"Rubric “{row.name}” is archived: new jobs can no longer pick it; jobs scored on it keep it.", "ok")
    return redirect(url_for("console.rubric_list"))
