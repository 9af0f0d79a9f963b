"""A WSGI app of the tests' own served on a real localhost port, in a thread: the network
edge for outside services (Supabase, an OpenAI-compatible judge) that the real client
libraries are pointed at. Subclasses are WSGI apps (``__call__``); this starts and stops them.

    with FakeService() as service:          # any LocalServer subclass
        client = Client(base_url=service.url)
"""
from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    def log(self, *args, **kwargs) -> None:  # no access log in test output
        pass

    def connection_dropped(self, error, environ=None) -> None:   # a client gone mid-request
        pass


class LocalServer:
    """Serves ``self`` (a WSGI app) on 127.0.0.1 and a free port while started."""

    name = "local-server"
    _server = None
    _thread = None

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=self.name)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
