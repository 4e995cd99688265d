# Local entry points. Everything the targets create lives in .venv/ and .local/ (git-ignored), but for
# one empty MLflow store per MLflow version in ~/.cache/customer_segmentation.
#
#   make run                 run the whole job on generated synthetic data
#   make run SOURCE=<dir>    run the whole job on the transaction files in <dir>
#   make test                run the test suite
#   make bench               run the benchmark harness (see BENCHMARKS.md)
#   make screenshots         the report of a real-data run, photographed at 1280 and 390 px into docs/
#   make class-archive       record the JVM classes of a run: later local runs start faster
#   make clean               remove local state (tables, checkpoints, MLflow store, data) and the
#                            empty MLflow store kept in ~/.cache/customer_segmentation

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
JARS_DIR := .local/jars
DELTA_VERSION := $(shell sed -n 's/^delta-spark==//p' requirements.txt)
JARS := $(JARS_DIR)/delta-spark_2.13-$(DELTA_VERSION).jar $(JARS_DIR)/delta-storage-$(DELTA_VERSION).jar

# The package finds the Delta jars here; without it, Spark resolves them through Ivy.
export CUSTOMER_SEGMENTATION_JARS_DIR := $(CURDIR)/$(JARS_DIR)
# Local JVMs start from this class-data sharing archive when it exists (`make class-archive`;
# `make bench` builds it first). It records a whole job's classes; rebuilt when the JDK, the
# pinned packages or the jars change.
JAVA_VERSION := $(shell java -version 2>&1 | head -1 | tr -cd '[:alnum:]._-')
CLASS_ARCHIVE := .local/jvm/classes-$(JAVA_VERSION).jsa
export CUSTOMER_SEGMENTATION_CLASS_ARCHIVE := $(CURDIR)/$(CLASS_ARCHIVE)
# No internet on CI apart from the package registries: skip MLflow's pip resolution.
export MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK := true

SOURCE ?=
ARGS ?=

.PHONY: run test bench clean bootstrap lock class-archive screenshots

bootstrap: $(INSTALLED) $(JARS)

# Installs only when a requirements file or pyproject.toml changed: a second run is a no-op.
$(INSTALLED): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# Delta's jars from Maven Central (via ~/.m2), copied once into .local/jars.
$(JARS_DIR)/%.jar:
	@mkdir -p $(JARS_DIR)
	mvn --batch-mode --quiet -Dstyle.color=never dependency:copy \
	  -Dartifact=io.delta:$(shell echo $* | sed -E 's/-([0-9][^-]*)$$//'):$(DELTA_VERSION) \
	  -DoutputDirectory=$(JARS_DIR)

run: bootstrap
	$(PY) -m customer_segmentation run $(if $(SOURCE),--source "$(SOURCE)") $(ARGS)

# Two workers, each with its own Spark session, a file's tests on one of them (its fixtures run
# once) with the other files that share its whole-job fixture, in the order tests/conftest.py
# gives them. One a core of CI's two: the suite is CPU-bound, and a third worker made it slower
# (BENCHMARKS.md). TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: bootstrap
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(ARGS)

REAL_DATA := ../shared/data/online-retail/by-day
SCREENSHOT_STATE := .local/screenshots
screenshots: bootstrap
	$(PY) -m customer_segmentation run --source $(REAL_DATA) --state-root $(SCREENSHOT_STATE)
	$(PY) -m customer_segmentation.report.browser $(SCREENSHOT_STATE)/report/index.html docs

bench: bootstrap $(CLASS_ARCHIVE)
	$(PY) -m bench $(ARGS)

class-archive: $(CLASS_ARCHIVE)

$(CLASS_ARCHIVE): $(INSTALLED) $(JARS)
	$(PY) -m customer_segmentation class-archive --out $@

clean:
	rm -rf .local build dist src/*.egg-info "$${XDG_CACHE_HOME:-$$HOME/.cache}/customer_segmentation"

# Re-resolve every transitive version after changing a pin in requirements*.txt.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements-dev.txt
	(echo "# Every transitive version, frozen from a resolved install of requirements-dev.txt."; \
	 echo "# Regenerate with: make lock"; .lock-venv/bin/pip freeze) > constraints.txt
	rm -rf .lock-venv
