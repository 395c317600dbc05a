"""Run a peer imputer (not part of the zoo) on one incomplete table, in the peers' environment.

    .venv-peers/bin/python training/peer_worker.py METHOD IN.npz OUT.npz SEED

`make peers` creates `.venv-peers` (HyperImpute needs pandas < 3, the project runs on pandas 3, so
they cannot share an environment). This file imports neither keraszoo nor TensorFlow. IN.npz holds
`x` [rows, columns] with NaN at missing entries; OUT.npz gets `imputed` (same shape), `seconds`
(the peer's own fit-and-impute time, without the interpreter's start-up) and `versions` (JSON).
Methods (transductive: each imputes the table it is fitted on, which is all they offer):

* `hyperimpute`: `Imputers().get("hyperimpute", random_state=SEED).fit_transform` (its defaults:
  per-column model selection inside an iterative imputer).
* `miceforest`: `ImputationKernel(random_state=SEED)`, 5 MICE iterations with LightGBM, one data set.

A peer that returns the column means at every missing entry (HyperImpute does so silently under
pandas >= 3, its column updates being chained assignments that copy-on-write drops) is an error.
"""
import json
import sys
import time

import numpy as np


def md_version(package):
    """The installed version of `package`, or None."""
    import importlib.metadata as md

    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def versions():
    found = {package: md_version(package) for package in ("hyperimpute", "miceforest", "pandas", "scikit-learn", "torch", "lightgbm", "numpy")}
    return {package: version for package, version in found.items() if version is not None}


def impute(method, x, seed):
    import pandas as pd

    frame = pd.DataFrame(x, columns=[f"c{j}" for j in range(x.shape[1])])
    if method == "hyperimpute":
        from hyperimpute.plugins.imputers import Imputers

        out = Imputers().get("hyperimpute", random_state=seed).fit_transform(frame)
    elif method == "miceforest":
        import miceforest as mf

        major = int(md_version("miceforest").split(".")[0])
        kernel = mf.ImputationKernel(frame, random_state=seed, **({"num_datasets": 1} if major >= 6 else {"datasets": 1}))
        kernel.mice(5)
        out = kernel.complete_data(dataset=0)
    else:
        raise SystemExit(f"peer_worker: unknown method {method!r} (hyperimpute, miceforest)")
    return np.asarray(out, dtype=np.float64)


def check(method, x, imputed):
    missing = np.isnan(x)
    if imputed.shape != x.shape:
        raise SystemExit(f"peer_worker: {method} returned shape {imputed.shape} for a table of shape {x.shape}")
    if np.isnan(imputed).any():
        raise SystemExit(f"peer_worker: {method} left {int(np.isnan(imputed).sum())} entries missing")
    means = np.nanmean(x, axis=0)
    if missing.any() and np.allclose(imputed[missing], np.broadcast_to(means, x.shape)[missing]):
        raise SystemExit(f"peer_worker: {method} returned the column means at every missing entry (pandas >= 3 with HyperImpute?)")
    # observed entries as given (a peer may round-trip them through float32 or a DataFrame)
    return np.where(missing, imputed, x)


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__.split("\n\n")[1])
    method, source, target, seed = argv[0], argv[1], argv[2], int(argv[3])
    x = np.load(source)["x"]
    np.random.seed(seed)
    start = time.perf_counter()
    imputed = impute(method, x, seed)
    seconds = time.perf_counter() - start
    np.savez(target, imputed=check(method, x, imputed), seconds=seconds, versions=json.dumps(versions()))


if __name__ == "__main__":
    main(sys.argv[1:])
