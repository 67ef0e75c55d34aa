# trendrec — the two commands of the README are `make demo` and `make test`.
# Both build everything they need: the virtualenv from the lock, a project-local Airflow home on
# SQLite, and the store under ./trendrec-data.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
UV_VERSION := 0.13.9

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PARALLELISM := 2
export AIRFLOW__API__HOST := 127.0.0.1
export TRENDREC_CONFIG ?= $(CURDIR)/trendrec.toml
export TRENDREC_STORE ?= $(CURDIR)/trendrec-data
export TRENDREC_LANDING ?= $(CURDIR)/landing
AIRFLOW_PORT ?= 8080
TEST_WORKERS ?= 2  # pytest-xdist workers of `make test`; --dist loadfile keeps a module (and its fixtures) on one worker
# Task runners call the API server's execution API; unset, they call localhost:8080 whatever --port says.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL := http://127.0.0.1:$(AIRFLOW_PORT)/execution/
AIRFLOW_COMPONENTS := api-server scheduler dag-processor triggerer
export TF_CPP_MIN_LOG_LEVEL := 2
export PATH := $(BIN):$(PATH)

.PHONY: install demo test airflow airflow-db tensorboard lock clean help

help:
	@echo "make demo   run the whole pipeline with Airflow on the bundled Online Retail data"
	@echo "make test   run the test suite"
	@echo "make airflow   run Airflow (api-server, scheduler, dag-processor, triggerer) on http://127.0.0.1:$(AIRFLOW_PORT); Ctrl-C stops it"
	@echo "make tensorboard   serve $(TRENDREC_STORE)/runs on http://127.0.0.1:6006"

$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "==> creating $(VENV) and installing the pinned stack (requirements.txt)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@# --compile-bytecode: .pyc files written once here (pip's default, not uv's), so no process compiles
	@# the stack's sources at import where they cannot be cached (PYTHONDONTWRITEBYTECODE, read-only images)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

install: $(VENV)/.installed

$(AIRFLOW_HOME)/airflow.db: $(VENV)/.installed
	@echo "==> migrating the Airflow metadata database in $(AIRFLOW_HOME)"
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)

airflow-db: $(AIRFLOW_HOME)/airflow.db

demo: install airflow-db
	@echo "==> running the trendrec_pipeline DAG with Airflow (airflow dags test) into $(TRENDREC_STORE)"
	@mkdir -p $(TRENDREC_STORE)
	$(BIN)/airflow dags test trendrec_pipeline 2011-12-10 > $(TRENDREC_STORE)/airflow-demo.log 2>&1 \
		|| (tail -n 60 $(TRENDREC_STORE)/airflow-demo.log; echo "demo failed: full log in $(TRENDREC_STORE)/airflow-demo.log"; exit 1)
	@grep -q "DagRun Finished.*state=success" $(TRENDREC_STORE)/airflow-demo.log \
		&& echo "==> Airflow run of trendrec_pipeline succeeded (log: $(TRENDREC_STORE)/airflow-demo.log)"
	@$(BIN)/trendrec status

test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

# The components are started one by one rather than with `airflow standalone`: standalone binds 0.0.0.0
# and leaves its children running on SIGTERM. Here the API server listens on loopback only, the log
# servers are off (one machine: the API server reads task logs from disk), and Ctrl-C or SIGTERM
# stops every component this recipe started, by pid. Logs: $(AIRFLOW_HOME)/logs/<component>.log.
airflow: install airflow-db
	@mkdir -p $(AIRFLOW_HOME)/logs $(TRENDREC_STORE) $(TRENDREC_LANDING)
	@echo "==> starting Airflow $(AIRFLOW_COMPONENTS) with the DAGs of $(AIRFLOW__CORE__DAGS_FOLDER)"
	@pids=""; \
	for c in $(AIRFLOW_COMPONENTS); do \
	  case $$c in scheduler|triggerer) extra=--skip-serve-logs;; api-server) extra="--port $(AIRFLOW_PORT)";; *) extra=;; esac; \
	  $(BIN)/airflow $$c $$extra > $(AIRFLOW_HOME)/logs/$$c.log 2>&1 & pids="$$pids $$!"; \
	done; \
	stop() { echo "==> stopping Airflow (pids$$pids)"; kill -TERM $$pids 2>/dev/null; wait $$pids 2>/dev/null; echo "==> Airflow stopped"; }; \
	trap 'stop; exit 0' INT TERM; \
	for i in $$(seq 120); do \
	  curl -fs http://127.0.0.1:$(AIRFLOW_PORT)/api/v2/monitor/health > /dev/null && break; sleep 1; \
	done; \
	if ! curl -fs http://127.0.0.1:$(AIRFLOW_PORT)/api/v2/monitor/health > /dev/null; then \
	  tail -n 20 $(AIRFLOW_HOME)/logs/api-server.log; stop; exit 1; fi; \
	echo "==> Airflow is up: http://127.0.0.1:$(AIRFLOW_PORT)"; \
	echo "    login: $$(sed -e 's/[{}" ]//g' -e 's/:/ password /' $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"; \
	echo "    DAGs are paused when first seen: unpause trendrec_ingest, trendrec_retrain, trendrec_rerank in the UI"; \
	echo "    landing folder: $(TRENDREC_LANDING)/<YYYY-MM-DD>/   store: $(TRENDREC_STORE)   Ctrl-C stops Airflow"; \
	wait

tensorboard: install
	$(BIN)/tensorboard --logdir $(TRENDREC_STORE)/runs --host 127.0.0.1 --port 6006

lock:
	$(BIN)/uv pip compile --quiet -p 3.11 requirements.in -o requirements.txt

clean:
	rm -rf $(TRENDREC_STORE) $(AIRFLOW_HOME) .pytest_cache
