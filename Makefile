# The two quick-start commands: `make demo` and `make test`. Each bootstraps .venv first:
# `make demo` with the base package only (what ctl needs to run a cluster), every other
# target with the test, MPI and plot extras on top (`make venv`).
# TESTING.md says how the suite is organised and what each test target runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
BASE   := $(VENV)/.installed-base
STAMP  := $(VENV)/.installed

# `make test` and its variants run on WORKERS pytest-xdist workers (default: one per core,
# at least 2); tests that must not run side by side share an xdist_group (TESTING.md).
WORKERS  ?= $(shell n=$$(nproc); [ $$n -gt 2 ] && echo $$n || echo 2)
PARALLEL := -n $(WORKERS) --dist loadgroup

.PHONY: demo lint test test-fast test-long test-loaded test-slurm coverage mutation bench venv clean

venv: $(STAMP)

$(BASE): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(BASE)

# examples/mostloaded: an out-of-tree wave kind (docs/waves.md), installed beside the
# package so that its tests run with the suite and the daemons load it
$(STAMP): $(BASE) examples/mostloaded/pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,mpi,plot]' -e examples/mostloaded
	touch $(STAMP)

# the shipped topology demo (ctl/shipped.py), from the base package alone
demo: $(BASE)
	$(BIN)/ctl demo

# Lint and types ([tool.ruff] and [tool.mypy] in pyproject.toml say what is checked and
# how strictly): the linter, the formatter (check only: `ruff format FILE` rewrites), mypy.
lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

# `make test` lints first, so CI (.ci/run) fails on a lint or type error too. The
# hypothesis profile comes from ECHOFINN_HYPOTHESIS (tests/budget.py): `ci` is
# randomized, `long` runs 10x the examples.
test: lint
	ECHOFINN_HYPOTHESIS=ci $(BIN)/python -m pytest -q $(PARALLEL)

# The edit loop: every test that starts no process (tests/conftest.py fails one that
# starts a process without the e2e marker).
test-fast: $(STAMP)
	ECHOFINN_HYPOTHESIS=ci $(BIN)/python -m pytest -q -m "not e2e" $(PARALLEL)

test-long: $(STAMP)
	ECHOFINN_HYPOTHESIS=long $(BIN)/python -m pytest -q $(PARALLEL)

# The launch under a real Slurm (tests/slurm): installs Debian's Slurm and munge when
# slurmctld is missing (as root; the packages' services are not used), then runs the tests,
# which start their own munged, slurmctld and slurmd in a temporary folder and stop them.
# `make test` runs the same tests when Slurm is installed and skips them otherwise.
test-slurm: $(STAMP)
	@export PATH="$$PATH:/usr/sbin:/sbin"; \
	if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge; \
	fi
	ECHOFINN_HYPOTHESIS=ci $(BIN)/python -m pytest -q -rA tests/slurm

# The suite 5 times in a row while a busy loop per core keeps the machine loaded
# (tests/loaded_runs.py): a test that fails here is a flaky test.
test-loaded: $(STAMP)
	$(BIN)/python tests/loaded_runs.py --runs 5 -- $(PARALLEL)

# Branch coverage of daemon/ and ctl/ across every process the suite starts ([coverage:*]
# in setup.cfg); COVERAGE_FILE is absolute because supervisors run with cwd /.
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	COVERAGE_FILE=$(CURDIR)/.coverage ECHOFINN_HYPOTHESIS=ci $(BIN)/python -m coverage run -m pytest -q; \
	status=$$?; \
	$(BIN)/python -m coverage combine -q && $(BIN)/python -m coverage report; \
	exit $$status

# Mutation testing of the pure core and the wire format against the fast tests ([mutmut]
# in setup.cfg), at the lowest priority: it keeps every core busy for half an hour.
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	rm -rf mutants
	ECHOFINN_HYPOTHESIS=mutation nice -n 19 $(BIN)/mutmut run --max-children $(shell nproc)
	$(BIN)/mutmut results

# Benchmarks print numbers (and ratios against a floor measured in the same run); the
# results and the commands live in BENCHMARKS.md. They are not part of `make test`.
bench: $(STAMP)
	$(BIN)/ctl bench echo --nodes 31,200 --load
	$(BIN)/ctl bench balance
	$(BIN)/ctl bench balance --scenario queue
	$(BIN)/ctl bench scale
	$(BIN)/ctl bench sim --snapshots 20000 --scale
	$(BIN)/python bench/recv_user_id.py
	$(BIN)/python bench/node_handle.py
	$(BIN)/python bench/top_render.py
	$(BIN)/python bench/topology_scale.py
	$(BIN)/python bench/chaos_sweep.py --seeds 500
	$(BIN)/python bench/mpi_launch.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis .coverage .coverage.* mutants .ruff_cache .mypy_cache
