"""The package's ``requirements.txt``: the versions ``inference.py`` was tested with.

``PINS`` is the one list. ``tests/test_deployment_package.py`` checks that it equals what
this project's environment has installed, where the package's own test runs, so a version
bump that was not tested in a fresh environment fails there first.
"""
from __future__ import annotations

PINS: dict[str, str] = {
    "torch": "2.13.0",
    "transformers": "5.24.0",
    "peft": "0.21.2",
    "accelerate": "1.15.0",
    "safetensors": "0.8.0",
    "gguf": "0.19.0",
    "bitsandbytes": "0.50.2",
}
# Requirements that apply to some machines only (PEP 508 environment markers).
MARKERS = {"bitsandbytes": 'platform_system == "Linux"'}
PURPOSE = {
    "torch": "tensors, CPU or GPU (see the GPU note above)",
    "transformers": "loads the base model and its tokenizer",
    "peft": "loads the LoRA adapter, merges it with --merge",
    "accelerate": "places large models on the GPUs (device_map)",
    "safetensors": "the adapter's weight format",
    "gguf": "reads GGUF base models, the embedded default among them",
    "bitsandbytes": "--load-in-4bit (NF4 on NVIDIA GPUs; Linux)",
}
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def requirements_txt() -> str:
    """The file's text: a note on torch's builds, then one pinned line a package.

    >>> print(requirements_txt().splitlines()[-1])
    bitsandbytes==0.50.2; platform_system == "Linux"  # --load-in-4bit (NF4 on NVIDIA GPUs; Linux)
    """
    torch = PINS["torch"]
    lines = [
        "# The versions inference.py was tested with (Python 3.11): pip install -r requirements.txt",
        "#",
        "# torch: on Linux, PyPI's torch wheel is the CUDA build. To choose the build yourself,",
        "# install torch first, then this file:",
        f"#   GPU (NVIDIA): pip install torch=={torch} --index-url {TORCH_CUDA_INDEX}",
        "#                 (the CUDA version your driver supports: https://pytorch.org/get-started/locally/)",
        f"#   CPU only:     pip install torch=={torch} --index-url {TORCH_CPU_INDEX}",
        "",
    ]
    for name, version in PINS.items():
        marker = f"; {MARKERS[name]}" if name in MARKERS else ""
        lines.append(f"{name}=={version}{marker}  # {PURPOSE[name]}")
    return "\n".join(lines) + "\n"
