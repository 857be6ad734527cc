# Every target creates or reuses .venv from requirements.txt by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
EMULATOR_PORT ?= 4566
STAMP := $(VENV)/.installed

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
# One demo per hosting option of the book chapter: `make demo-sentiment`, `make demo-ab`, ...
DEMOS := demo-sentiment demo-direct demo-serial demo-serverless demo-async demo-capture demo-ab demo-monitoring demo-promotion \
	demo-autoscaling

.PHONY: venv demo test emulator up bench bench-data-quality bench-promotion bench-load-generator bench-autoscaling lock clean $(DEMOS)

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

# One demo per hosting option of the book chapter.
demo-sentiment: venv
	$(BIN)/python scripts/demo.py --pipeline include/pipelines/sentiment.yaml
demo-direct: venv
	$(BIN)/python scripts/demo.py --pipeline include/pipelines/iris-sentiment-direct.yaml
demo-serial: venv
	$(BIN)/python scripts/demo.py --pipeline include/pipelines/iris-serial.yaml
demo-serverless: venv
	$(BIN)/python scripts/demo.py --pipeline include/pipelines/iris-serverless.yaml
demo-async: venv
	$(BIN)/python scripts/demo.py --pipeline include/pipelines/iris-async.yaml
demo-capture: venv
	$(BIN)/python scripts/demo.py --pipeline include/pipelines/iris-tree.yaml
demo-ab: venv
	$(BIN)/python scripts/demo.py --dag ab_test
demo-monitoring: venv
	$(BIN)/python scripts/demo.py --dag model_monitoring
# A bad version rolled back by its 5XX alarm, then a canary promotion; reports saved under .airflow/.
demo-promotion: venv
	$(BIN)/python scripts/demo.py --dag promote_variant
# The chapter's target tracking on iris (10 invocations/instance, 1-4 instances), time-scaled: load scales it out
# to 4 and, once stopped, back in to 1; the report is saved as .airflow/scaling-report.html.
demo-autoscaling: venv
	$(BIN)/python scripts/demo_autoscaling.py

# Three workers, one module each at a time (module fixtures deploy endpoints once): most tests wait on
# endpoints and time-scaled alarms, not on the CPU, so three fit on two cores. Each worker has its own
# emulator process and Airflow home (tests/conftest.py).
test: venv
	$(BIN)/python -m pytest -n 3 --dist loadfile

emulator: venv
	$(BIN)/sagemaker-emulator serve --port $(EMULATOR_PORT)

up: venv
	$(BIN)/python scripts/up.py --emulator-port $(EMULATOR_PORT)

# The emulator's invocation path beside one bare aiohttp process serving the same inference.py, same run:
# throughput ratio at 8 connections, added p50/p99 at concurrency 1, the router's CPU per request (/proc).
bench: venv
	$(BIN)/python bench/router_overhead.py --concurrency 8

# The data-quality analyzer on 10M rows beside pandas describe() + deciles (writes ~1 GB under bench/out/).
bench-data-quality: venv
	$(BIN)/python bench/baseline_profile.py

# A broken canary rolled back by its evaluated 5XX alarm: first failed request to 100% traffic on blue,
# beside the alarm's evaluation period (60 s at time scale 20 = 3 s), 5 runs, same run.
bench-promotion: venv
	$(BIN)/python bench/rollback_reaction.py --time-scale 20 --runs 5

# Target tracking's scale-out: first breaching datapoint to new instances serving, beside the AlarmHigh's
# 3-period window (60 s at time scale 20 = 3 s) and the measured instance start-up time, 3 runs, same run.
bench-autoscaling: venv
	$(BIN)/python bench/scaling_reaction.py --time-scale 20 --runs 3

# Our Locust load generator beside wrk against the same trivial endpoint, same run (goal: >= 80% of wrk's req/s).
bench-load-generator: venv
	$(BIN)/python bench/load_generator.py --seconds 5 --connections 32 --rounds 3

clean:
	rm -rf $(VENV) .airflow .pytest_cache
