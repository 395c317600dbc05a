"""Fixtures shared by every test folder (tests/ and the tests beside the models)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_threads():
    """Under pytest-xdist, each worker's share of the cores (None when not a worker of several)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


# Left alone, every worker's BLAS and TensorFlow size their thread pools to all the cores, so on 2
# cores two workers run many spinning threads and much of the CPU time goes to waiting (measured on the
# whole suite, 2 workers: 3110 s of CPU, 31:13 wall; with BLAS and both TensorFlow pools limited
# through the environment, subprocesses included, 2618 s and 26:07, but a later run saw a server
# subprocess outlive its SIGTERM by 30 s under that; this narrower form, with the files ordered as
# below, passed a fresh-clone run in 23:59). Only the worker processes are limited: BLAS reads its variables when numpy loads,
# so they are set for that import and then restored, and TensorFlow's intra-op pool is set through its
# API; subprocesses a test starts (servers, README snippets, fresh-process export checks) run with the
# defaults, as a user's would.
_THREADS = _worker_threads()
_SAVED = {name: os.environ.get(name) for name in BLAS_THREADS}
if _THREADS:
    for _name in BLAS_THREADS:
        os.environ.setdefault(_name, str(_THREADS))

import json

import numpy  # noqa: F401  (BLAS reads the variables above as it loads)
import pytest

from keraszoo import testing

if _THREADS:
    for _name, _value in _SAVED.items():
        if _value is None:
            os.environ.pop(_name, None)
        else:
            os.environ[_name] = _value
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(_THREADS)
    except RuntimeError:  # TensorFlow already ran an op: its pools are fixed; leave them
        pass

DURATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests", "durations.json")


def pytest_collection_modifyitems(config, items):
    """The longest test files first, by `tests/durations.json` (seconds per file, as
    `python tests/update_durations.py LOG` reads them from a ``--durations=0`` run).

    `make test` spreads whole files over the workers (``--dist loadfile``) in collection order
    (``--no-loadscope-reorder``; xdist would otherwise sort files by their number of tests), so a long
    file handed out last leaves one worker running it alone while the other core idles: 8 of the 31
    minutes of a 2-core run before this order. Files not in the table (new ones) go last, in collection
    order; tests keep their order within a file. A missing or unreadable table changes nothing."""
    try:
        with open(DURATIONS, encoding="utf-8") as f:
            costs = {str(k): float(v) for k, v in json.load(f).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return
    def file_of(item):
        return item.nodeid.split("::")[0]

    first = {}
    for i, item in enumerate(items):
        first.setdefault(file_of(item), i)
    items.sort(key=lambda item: (-costs.get(file_of(item), 0.0), first[file_of(item)]))


@pytest.fixture(scope="session")
def breast_mcar():
    """(truth, mask): breast-cancer table, min-max scaled, 20% MCAR with seed 0; 1 = observed."""
    return testing.breast_mcar()
