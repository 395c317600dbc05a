"""Fixtures shared by every test folder (tests/ and the tests beside the models)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _share_the_cores():
    """Under pytest-xdist, give each worker its share of the cores before numpy or TensorFlow load.

    Left alone, every worker's TensorFlow (intra- and inter-op pools) and BLAS size their thread pools
    to all the cores, so on 2 cores two workers run 8 or more spinning threads and much of the CPU time
    goes to waiting. Set before the libraries load (they read these once); subprocesses a test starts
    (README snippets, fresh-process export checks, servers) inherit them. Explicit settings win."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = str(max(1, cores // workers))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(name, threads)


_share_the_cores()

import json

import pytest

from keraszoo import testing

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
    first = {}
    for i, item in enumerate(items):
        first.setdefault(item.nodeid.split("::")[0], i)
    items.sort(key=lambda item: (-costs.get(item.nodeid.split("::")[0], 0.0), first[item.nodeid.split("::")[0]]))


@pytest.fixture(scope="session")
def breast_mcar():
    """(truth, mask): breast-cancer table, min-max scaled, 20% MCAR with seed 0; 1 = observed."""
    return testing.breast_mcar()
