# The two quick-start commands: `make demo` and `make test`. Each bootstraps .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,mpi,plot]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ctl demo topologies/demo.toml

test: $(STAMP)
	$(BIN)/python -m pytest -q

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
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
