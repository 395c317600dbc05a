# Set-up and entry points. `make demo` and `make test` each create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench peers clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m training.demo

# One worker per core, at most 4 (each holds its own TensorFlow); a test file stays on one worker, so
# its module fixtures are built once; files go out longest first (conftest.py, tests/durations.json).
# TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	$(PY) -m training.benchmark --models mean,knn,mice,missforest,matrix,em,gain --datasets spam,letter,credit --miss-rate 0.2 --seeds 5
	$(PY) -m training.speed

# The peer imputers the `auto` benchmark compares with (training/peer_worker.py), in their own
# environment: HyperImpute needs pandas < 3 (under pandas 3 it silently returns mean imputation), the
# project runs on pandas 3; miceforest 6.0.5 calls a private LightGBM method that 4.6 changed;
# HyperImpute 0.1.17 passes LogisticRegression(multi_class=...), gone from newer scikit-learn (it failed
# on credit's discrete columns under 1.9.1; 1.6.1 runs it).
PEERS := .venv-peers
peers: $(PEERS)/.installed

$(PEERS)/.installed:
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet "hyperimpute==0.1.17" "miceforest==6.0.5" "lightgbm<4.6" "pandas<3" "scikit-learn<1.7"
	touch $@

clean:
	rm -rf $(VENV) $(PEERS) build *.egg-info
