"""What ships: the worker image's install line and the WSGI entry. (The layering rules,
shared/ importing no flask, torch or runpod among them, are tests/test_architecture.py.)"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.conftest import ROOT


def test_the_handler_image_installs_extras_that_exist_and_runs_the_handler_module():
    docker = (ROOT / "Dockerfile.handler").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in re.findall(r"pip install '\.\[([a-z,]+)\]'", docker):
        assert set(extra.split(",")) <= set(extras)
    assert 'CMD ["python", "-u", "-m", "handler.handler"]' in docker
    # The handler module imports cleanly (it loads torch, transformers and peft once).
    result = subprocess.run([sys.executable, "-c", "import handler.handler as h; print(h.handler.__name__)"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "handler"


def test_the_wsgi_app_answers_its_health_check():
    from wsgi import app
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
