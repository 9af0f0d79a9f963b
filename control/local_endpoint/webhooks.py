"""A job's ``webhook``: its final status body POSTed there, best effort, as RunPod does."""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request

log = logging.getLogger(__name__)


def send(url: str, body: dict, attempts: int = 3, timeout_s: float = 10.0,
         backoff_s: float = 2.0) -> threading.Thread:
    """POST ``body`` to ``url`` in a daemon thread, retrying; failures are only logged."""
    def post() -> None:
        data = json.dumps(body).encode()
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(url, data=data, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=timeout_s):
                    return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.warning("webhook %s/… for job %s failed (attempt %d/%d): %s",   # the path's last part may be a token
                            url.rsplit("/", 1)[0], body.get("id"), attempt, attempts, exc)
            if attempt < attempts:
                time.sleep(backoff_s * attempt)

    thread = threading.Thread(target=post, name=f"webhook-{body.get('id')}", daemon=True)
    thread.start()
    return thread
