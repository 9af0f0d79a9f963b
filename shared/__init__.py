"""Pure domain code shared by the control plane and the training worker.

Nothing here imports flask, torch or runpod at module level, so the control plane
installs and runs without the training stack.
"""
