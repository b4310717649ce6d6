# Every target sets up its own virtualenv first; nothing needs to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test faults bench loadtest lint venv clean image

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One stamp per extra set, remade whenever pyproject.toml changes.
$(VENV)/.stamp-base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(VENV)/.stamp-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

venv: $(VENV)/.stamp-base

run: $(VENV)/.stamp-base
	$(BIN)/onair serve

# Two workers, a test file each: most tests wait on real time (live publishing at -re, browsers, outages), so two
# files at once roughly halve the run on 2 cores. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: $(VENV)/.stamp-test
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

# The fault suite at the lengths of issue 15 (Redis down 15 s, database frozen 20 s, S3 out 30 s, ...);
# `make test` runs the same tests with short outages. Needs root for the full-disk tmpfs.
# Prints the fault table and writes it to bench/results/faults.json.
faults: $(VENV)/.stamp-test
	ONAIR_FAULTS_FULL=1 ONAIR_FAULTS_REPORT=bench/results/faults.json $(BIN)/python -m pytest -s -q tests/faults $(PYTEST_ARGS)

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check .

bench: $(VENV)/.stamp-bench
	$(BIN)/python -m bench

# Live-event load test against a local `onair serve --workers N` (loopback only); reports in loadtests/results/.
# SCENARIO: vote_now | redbutton_storm | show_start | chat_storm | breaking_news | baseline | all
# breaking_news defaults to the issue's spike: 2,000 LL-HLS players joining within 10 s, then 60 s at the live edge
# (on a 2-core box locust is measured as much as onair: add LOADTEST_ARGS="--processes 4" on a bigger one).
SCENARIO ?= all
ifeq ($(SCENARIO),breaking_news)
USERS    ?= 2000
DURATION ?= 60
endif
USERS    ?= 200
DURATION ?= 30
WORKERS  ?= 2
loadtest: $(VENV)/.stamp-bench
	$(BIN)/python -m loadtests.run --scenario $(SCENARIO) --users $(USERS) --duration $(DURATION) --workers $(WORKERS) $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The embeddable player bundle (hls.js + our script), rebuilt from the npm lockfile into
# syndication/embed/static/player/ with content-hashed names; the result is committed so `make run` needs no node.
.PHONY: player
player:
	cd syndication/embed/player && npm ci --no-audit --no-fund && npm run build

# The container image deploy/kubernetes and compose.yaml refer to (needs a container engine: docker or podman).
ENGINE ?= $(shell command -v docker || command -v podman)
image:
	$(ENGINE) build -t onair:0.1.0 .

# The studio front end (studio/front: plain ES modules + tus-js-client), rebuilt from its npm lockfile into
# studio/static/bundle/ with content-hashed names (committed, like the player); also refreshes the axe-core copy
# the accessibility tests inject (tests/vendor/axe.min.js).
.PHONY: studio
studio:
	cd studio/front && npm ci --no-audit --no-fund && npm run build

# The prebuilt players the conformance tests play onair's output with (shaka-player, dash.js, hls.js), copied
# from their npm lockfile into tests/vendor/ (committed test fixtures, like axe.min.js); see tests/players/.
.PHONY: test-players
test-players:
	cd tests/players && npm ci --no-audit --no-fund && npm run build
