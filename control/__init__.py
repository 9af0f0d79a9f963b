"""The control plane: the ``pipeline`` command line now; the Flask app, JSON API, console
and RQ dispatch arrive with the control-plane issue."""
