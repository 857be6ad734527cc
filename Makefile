# Every target creates or reuses .venv from requirements.txt by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
EMULATOR_PORT ?= 4566
STAMP := $(VENV)/.installed

export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: venv demo test emulator up bench lock clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# Re-pin requirements.txt from requirements.in.
lock: venv
	$(BIN)/uv pip compile requirements.in -o requirements.txt --python-version 3.11

demo: venv
	$(BIN)/python scripts/demo.py

test: venv
	$(BIN)/python -m pytest

emulator: venv
	$(BIN)/sagemaker-emulator serve --port $(EMULATOR_PORT)

up: venv
	$(BIN)/python scripts/up.py --emulator-port $(EMULATOR_PORT)

bench: venv
	$(BIN)/python bench/router_overhead.py

clean:
	rm -rf $(VENV) .airflow .pytest_cache
