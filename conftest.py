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

import pytest

from keraszoo import testing


@pytest.fixture(scope="session")
def breast_mcar():
    """(truth, mask): breast-cancer table, min-max scaled, 20% MCAR with seed 0; 1 = observed."""
    return testing.breast_mcar()
