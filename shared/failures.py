"""What went wrong, in the taxonomy of ``shared.errors``: classify a failure from its
exception (the handler) or its text (RunPod's status, a log line), and say the likely
cause, the fix, and the settings a retry should change.

Pure: it looks at type names and messages, never imports torch, huggingface_hub or httpx,
so the control plane classifies the same text the worker would.

>>> f = classify_text("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
...                   settings={"batch_size": 4, "gradient_accumulation_steps": 4, "max_seq_length": 2048},
...                   gpu_memory_gb=80)
>>> f.type, f.user_error, f.adjustment
('out_of_memory', True, {'batch_size': 2, 'gradient_accumulation_steps': 8})
>>> f.fix
'Try batch_size=2 (with gradient_accumulation_steps=8, the same pairs a step) or the conservative preset.'
>>> classify_text("ConnectError: [Errno 111] Connection refused").type
'storage'
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from shared.errors import ErrorType, PipelineError

# Failures a new attempt can get past: the worker, the GPU or the network failed, not the job.
RECOVERABLE = frozenset({ErrorType.WORKER_LOST.value, ErrorType.STORAGE.value,
                         ErrorType.GPU_FAULT.value, ErrorType.INTERRUPTED.value})


@dataclass(frozen=True)
class Failure:
    type: str
    user_error: bool
    message: str
    cause: str
    fix: str
    adjustment: dict = field(default_factory=dict)   # settings a retry should change

    @property
    def recoverable(self) -> bool:
        return self.type in RECOVERABLE

    def to_dict(self) -> dict:
        out = asdict(self)
        if not self.adjustment:
            del out["adjustment"]
        return out


def oom_adjustment(settings: dict) -> dict:
    """Half the micro-batch, twice the accumulation (the same training pairs a step); at batch
    size 1, half the sequence length instead.

    >>> oom_adjustment({"batch_size": 4, "gradient_accumulation_steps": 4})
    {'batch_size': 2, 'gradient_accumulation_steps': 8}
    >>> oom_adjustment({"batch_size": 1, "gradient_accumulation_steps": 16, "max_seq_length": 2048})
    {'max_seq_length': 1024}
    >>> oom_adjustment({"batch_size": 1, "max_seq_length": 256}), oom_adjustment({})
    ({}, {})
    """
    if not settings.get("batch_size"):
        return {}                       # the settings are not known: no guess
    batch = int(settings["batch_size"])
    if batch > 1:
        return {"batch_size": batch // 2,
                "gradient_accumulation_steps": int(settings.get("gradient_accumulation_steps") or 1) * 2}
    length = int(settings.get("max_seq_length") or 2048)
    return {"max_seq_length": length // 2} if length // 2 >= 512 else {}


def out_of_memory(settings: dict | None = None, gpu_memory_gb: float | None = None,
                  detail: str = "") -> Failure:
    settings = settings or {}
    batch, length = settings.get("batch_size"), settings.get("max_seq_length")
    memory = f"{gpu_memory_gb:g} GB" if gpu_memory_gb else "its"
    what = f"batch_size={batch}" if batch else "these settings"
    if length:
        what += f" (max_seq_length={length})"
    adjustment = oom_adjustment(settings)
    if "batch_size" in adjustment:
        fix = (f"Try batch_size={adjustment['batch_size']} (with gradient_accumulation_steps="
               f"{adjustment['gradient_accumulation_steps']}, the same pairs a step) or the conservative preset.")
    elif adjustment:
        fix = f"Try max_seq_length={adjustment['max_seq_length']}, the qlora method, or a GPU with more memory."
    else:
        fix = "Use the qlora method, a smaller base model, or a GPU with more memory."
    return Failure(ErrorType.OUT_OF_MEMORY.value, True,
                   f"Your dataset + {what} exceeds the GPU's {memory} of memory."
                   + (f" ({detail[:300]})" if detail else ""),
                   "The longest micro-batch's activations, with the model and optimizer state, "
                   "did not fit in GPU memory.", fix, adjustment)


# (type, pattern, cause, fix) for failures known by their text, most specific first.
_PATTERNS: list[tuple[ErrorType, str, str, str]] = [
    (ErrorType.GPU_FAULT,
     r"illegal memory access|device-side assert|unspecified launch failure|uncorrectable ECC|"
     r"CUDA error: (?!out of memory)|NCCL error|cudaErrorLaunchFailure|Xid",
     "The GPU itself failed (a hardware or driver fault), not the job's settings.",
     "Nothing to change: the worker exits so the platform replaces it, and the job resumes "
     "from its last checkpoint on another GPU."),
    (ErrorType.BASE_MODEL_ACCESS,
     r"GatedRepoError|gated|401 Client Error|403 Client Error|Invalid (user )?token|"
     r"RepositoryNotFoundError|Repository Not Found|Access to model .* is restricted",
     "The base model is gated (its licence must be accepted) or the worker's Hugging Face "
     "token is missing or refused.",
     "Accept the model's licence on Hugging Face with the account of the token, and set "
     "HF_TOKEN in the worker's environment (never in the job)."),
    (ErrorType.GPU_PROVISIONING,
     r"no (GPU )?capacity|insufficient capacity|no (available )?workers?|throttled|"
     r"no instances available|stayed in the queue|could not be scheduled",
     "No GPU of the chosen type and pricing was free to take the job.",
     "Try on-demand pricing or another GPU type (A100 80GB), or start the job again later."),
    (ErrorType.TIMEOUT,
     r"TIMED_OUT|execution time limit|executionTimeout|time limit",
     "The job needed more than its time limit (24 hours by default, counted over every attempt).",
     "Reduce num_epochs or max_steps, or continue training from the last checkpoint in a new job."),
    (ErrorType.STORAGE,
     r"ConnectError|ConnectionError|Connection (refused|reset|aborted)|timed out|Timeout|"
     r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
     r"No space left on device|Read-only file system|StorageError|5\d\d Server Error|"
     r"Bad Gateway|Service Unavailable|RemoteDisconnected|BrokenPipe",
     "Object storage or the network to it failed while the job read or wrote its files.",
     "Nothing to change: the job resumes from its last checkpoint once storage answers again. "
     "If it keeps failing, check SUPABASE_URL and the bucket from the worker."),
    (ErrorType.WORKER_LOST,
     r"worker lost|killed by SIG|reclaimed|Preempt|spot instance|exited with|ended without completing",
     "The worker stopped before finishing: a spot GPU was reclaimed, or its process died.",
     "Nothing to change: the job resumes from its last checkpoint on a new worker."),
]


# A base model the worker could not read, in the loaders' own words. Those words name the
# worker's paths and say what is (not) in them, so the message is replaced, never passed on.
_MODEL_UNAVAILABLE = re.compile(
    r"is not available to the worker|is not a local folder and is not a valid model identifier|"
    r"does not appear to have a file named|Can't load (the )?(tokenizer|config|model|configuration)|"
    r"Incorrect path_or_model_id|no file named .* found in directory|Unrecognized model in|"
    r"couldn't connect to .* to load (this|the) files?", re.I)
MODEL_UNAVAILABLE_FIX = ("Choose one of the base models this deployment allows (GET /api/base-models). "
                         "An operator makes a model available on the worker: a Hugging Face id it can "
                         "download (a gated or private one needs HF_TOKEN in the worker's environment), "
                         "or a model directory or .gguf file on its disk.")


def model_unavailable(name: str | None = None) -> Failure:
    """The one failure for a base model the worker cannot use: never where it looked or
    what it found.

    >>> f = classify_text("OSError: /root/.ssh does not appear to have a file named config.json")
    >>> f.type, f.message
    ('base_model_access', 'the base model is not available to the worker')
    """
    what = f"base model {name!r}" if name else "the base model"
    return Failure(ErrorType.BASE_MODEL_ACCESS.value, True, f"{what} is not available to the worker",
                   CAUSES[ErrorType.BASE_MODEL_ACCESS], MODEL_UNAVAILABLE_FIX)


def classify_text(text: str, *, settings: dict | None = None, gpu_memory_gb: float | None = None) -> Failure:
    """A failure known only by its text (an exception's ``Type: message``, RunPod's error)."""
    text = str(text or "").strip()
    if re.search(r"out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED",
                 text, re.I):
        return out_of_memory(settings, gpu_memory_gb, _first_line(text))
    if _MODEL_UNAVAILABLE.search(text):
        named = re.search(r"base model ('[^']{1,255}') is not available", text)
        return model_unavailable(named.group(1).strip("'") if named else None)
    for kind, pattern, cause, fix in _PATTERNS:
        if re.search(pattern, text, re.I):
            return Failure(kind.value, kind.is_user_error, _first_line(text) or kind.value, cause, fix)
    return internal(text)


def of_kind(kind: ErrorType, message: str) -> Failure:
    """A failure whose type the caller already knows (the control plane's own findings: a
    silent worker, no capacity, the time limit), with that type's cause and fix.

    >>> of_kind(ErrorType.WORKER_LOST, "no event for 900 s").fix
    'Nothing to change: the job resumes from its last checkpoint on a new worker.'
    """
    cause, fix = next((c, f) for k, _, c, f in _PATTERNS if k is kind)
    return Failure(kind.value, kind.is_user_error, message, cause, fix)


# An absolute path on the worker's disk (not a URL's path): an internal error's text may name
# one, and the message goes to whoever submitted the job.
_WORKER_PATH = re.compile(r"(?<![\w:/.~-])~?/(?:[\w.@+-]+/)*[\w.@+-]+/?")


def internal(text: str) -> Failure:
    """A fault of ours; the message keeps the text's first line, its worker paths left out.

    >>> internal("FileNotFoundError: [Errno 2] No such file or directory: '/root/.ssh/id_rsa'").message
    "FileNotFoundError: [Errno 2] No such file or directory: '<path>'"
    >>> internal("HTTPError: 500 for url: https://example.com/a/b").message
    'HTTPError: 500 for url: https://example.com/a/b'
    """
    return Failure(ErrorType.INTERNAL.value, False,
                   _WORKER_PATH.sub("<path>", _first_line(text)) or "an unexpected error",
                   "A fault in the platform's own code.",
                   "Retry the job; if it fails the same way, send the support bundle "
                   "(job page > Export, or GET .../support-bundle) to the platform team.")


def classify(exc: BaseException, *, settings: dict | None = None,
             gpu_memory_gb: float | None = None) -> Failure:
    """A raised exception: the product's own errors keep their type, message and fix; others
    are known by their type's name and message."""
    if isinstance(exc, PipelineError):
        info = exc.to_dict()
        cause = CAUSES.get(exc.error_type, "")
        if exc.error_type is ErrorType.OUT_OF_MEMORY:
            return out_of_memory(settings, gpu_memory_gb, exc.message)
        return Failure(info["type"], info["user_error"], exc.message, cause,
                       exc.fix or FIXES.get(exc.error_type, ""))
    name = type(exc).__name__
    return classify_text(f"{name}: {exc}", settings=settings, gpu_memory_gb=gpu_memory_gb)


CAUSES = {
    ErrorType.DATASET_FORMAT: "The dataset file does not follow its format; each problem names its place.",
    ErrorType.INVALID_CONFIG: "A setting is out of range or does not fit the others.",
    ErrorType.BASE_MODEL_ACCESS: "The base model could not be read: gated, missing, or the token was refused.",
    ErrorType.STORAGE: "Object storage or the network to it failed.",
    ErrorType.CANCELLED: "Someone cancelled the job.",
    ErrorType.TIMEOUT: "The job reached its time limit.",
    ErrorType.INTERRUPTED: "The worker was asked to stop and saved a checkpoint first.",
    ErrorType.BUDGET_EXCEEDED: "The team's monthly budget was reached, so the job saved a checkpoint and stopped.",
    ErrorType.SPEND_CAP: "The job's projected cost passed its spend cap (max_cost_usd), so it saved a "
                         "checkpoint and stopped.",
}
FIXES = {
    ErrorType.DATASET_FORMAT: "Fix the listed problems in the file and upload it again.",
    ErrorType.INVALID_CONFIG: "Change the named setting and start a new job.",
    ErrorType.STORAGE: "Nothing to change: the job resumes from its last checkpoint once storage answers.",
    ErrorType.CANCELLED: "Start it again (Retry) if it was cancelled by mistake; its checkpoints are kept.",
    ErrorType.BUDGET_EXCEEDED: "Retry it from its last checkpoint once the budget allows (an admin can raise "
                               "the limit or override it for this job).",
    ErrorType.SPEND_CAP: "Retry it from its last checkpoint with a higher max_cost_usd.",
}


def _first_line(text: str) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line[:500]
