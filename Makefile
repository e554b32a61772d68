# The two commands the README promises: `make run` (the nightly job) and `make test`.
# Each bootstraps .venv from the lock file on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test test-fast bench lock ui server deploy worker clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: venv
	$(BIN)/ridership nightly

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not e2e and not slow"

# A long-running local Prefect server with the UI at http://127.0.0.1:4200, the deployments from
# prefect.yaml and a process worker, all in one terminal (Ctrl-C stops them).
PREFECT_PORT ?= 4200
PREFECT_LOCAL := PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1

server: venv
	$(PREFECT_LOCAL) $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

deploy: venv
	$(PREFECT_LOCAL) $(BIN)/prefect work-pool inspect ridership-local >/dev/null 2>&1 || \
	  $(PREFECT_LOCAL) $(BIN)/prefect work-pool create ridership-local --type process
	$(PREFECT_LOCAL) $(BIN)/prefect --no-prompt deploy --all
	$(PREFECT_LOCAL) $(BIN)/prefect automation inspect ridership-crash-unresponsive-runs >/dev/null 2>&1 || \
	  $(PREFECT_LOCAL) $(BIN)/prefect automation create --from-file automations.yaml

worker: venv
	$(PREFECT_LOCAL) $(BIN)/prefect worker start --pool ridership-local

ui: venv
	@set -e; $(PREFECT_LOCAL) $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) & server=$$!; \
	trap 'kill $$server 2>/dev/null' EXIT INT TERM; \
	until $(BIN)/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$(PREFECT_PORT)/api/health')" 2>/dev/null; do sleep 1; done; \
	$(MAKE) --no-print-directory deploy; \
	echo "Prefect UI: http://127.0.0.1:$(PREFECT_PORT)  (deployments: nightly, backfill)"; \
	$(MAKE) --no-print-directory worker

bench: venv
	$(BIN)/python bench/bench_sarima.py
	$(BIN)/python bench/bench_rnn.py

lock:
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
