"""The main job on data that needs no download (`make demo`).

Fits GAIN and the classical baselines on scikit-learn's breast-cancer table with 20% of its entries
removed completely at random, prints an RMSE table, saves the trained GAIN imputer under
`saved_models/`, loads it back and imputes rows it has never seen. Then it exports that imputer as a
SavedModel (next version under `saved_models/serving/gain_breast/`), starts the embedded
TF-Serving-compatible server, imputes the same rows over gRPC and over REST, and stops the server.
"""
import os
import time
import warnings

import numpy as np
import pandas as pd

DEMO_MODELS = ["mean", "median", "knn", "mice", "missforest", "matrix", "em", "gain", "gain+mask"]
#: "gain+mask" is GAIN with the zoo's extra masking of observed entries (see keraszoo.models.gain).
_EXTRA = {"gain+mask": ("gain", {"extra_mask_rate": 0.2})}


def build_parser(prog="python -m training.demo"):
    from keraszoo.console import ArgumentParser

    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=10_000, help="GAIN training steps")
    parser.add_argument("--miss-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-dir", default=os.path.join("saved_models", "gain_breast"))
    parser.add_argument("--serving-dir", default=os.path.join("saved_models", "serving"), help="export base path to serve from")
    parser.add_argument("--no-serve", dest="serve", action="store_false", help="skip the export and serving steps")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and warnings")
    return parser


def main(argv=None, prog="python -m training.demo"):
    args = build_parser(prog).parse_args(argv)
    from keraszoo.console import quiet_tensorflow

    quiet_tensorflow(verbose=args.verbose)  # before anything imports TensorFlow
    from keraszoo import list_models, metrics
    from keraszoo.data import load_dataset, mcar_mask
    from keraszoo.sklearn import ZooImputer

    data = load_dataset("breast")
    table = data.features
    mask = mcar_mask(table.shape, args.miss_rate, seed=args.seed)
    incomplete = table.mask(mask == 0)  # NaN where removed
    order = np.random.default_rng(args.seed).permutation(len(table))
    train_rows, new_rows = order[: int(0.8 * len(table))], order[int(0.8 * len(table)) :]
    train, new = incomplete.iloc[train_rows], incomplete.iloc[new_rows]
    print(
        f"breast-cancer table: {table.shape[0]} rows x {table.shape[1]} columns, {100 * args.miss_rate:.0f}% MCAR "
        f"({int((mask == 0).sum())} entries removed); fit on {len(train)} rows, {len(new)} unseen rows held out\n"
    )

    list_models()  # import every model now, so the first fit time below is not an import time
    from sklearn.exceptions import ConvergenceWarning

    rows, fitted, notes = [], {}, []
    for label in DEMO_MODELS:
        name, params = _EXTRA.get(label, (label, {}))
        if name == "gain":
            params = {**params, "iterations": args.iterations, "seed": args.seed}
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            imputer = ZooImputer(name, **params).fit(train)
        seconds = time.perf_counter() - start
        notes += [f"{label}: {w.message}" for w in caught if issubclass(w.category, ConvergenceWarning)]
        fitted[label] = imputer
        rows.append(
            {
                "model": label,
                "RMSE (fitted rows)": metrics.rmse(table.iloc[train_rows], imputer.transform(train), mask[train_rows]),
                "RMSE (unseen rows)": metrics.rmse(table.iloc[new_rows], imputer.transform(new), mask[new_rows]),
                "fit time (s)": seconds,
            }
        )
    report = pd.DataFrame(rows).set_index("model")
    print("RMSE over the removed entries, normalised by each column's true min/max (lower is better):")
    print(report.to_string(float_format=lambda v: f"{v:.4f}"))
    for note in notes:  # e.g. MICE at scikit-learn's max_iter=10 before its tolerance: said once, in the table's terms
        print(f"note: {note}")

    path = fitted["gain"].save(args.save_dir)
    loaded = ZooImputer.load(path)
    print(f"\nsaved the trained GAIN imputer to {path}/ and loaded it back")
    sample = new.iloc[:3, :6]
    completed = loaded.transform(new).iloc[:3, :6]
    print("\nthree unseen rows (first 6 columns), NaN = missing:")
    print(sample.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nimputed by the loaded model (observed values unchanged):")
    print(completed.to_string(float_format=lambda v: f"{v:.3f}"))
    observed = new.notna().to_numpy()
    assert np.array_equal(loaded.transform(new).to_numpy()[observed], new.to_numpy()[observed])
    if args.serve:
        serve_demo(loaded, new.iloc[:3], args.serving_dir)
    return report


def serve_demo(imputer, rows, base_path):
    """Export `imputer`, start the embedded TF-Serving-compatible server, impute `rows` over gRPC and REST."""
    import json
    import urllib.request

    from serving.client import ImputeClient
    from serving.export import export
    from serving.server import start_subprocess

    path = export(imputer, base_path, "gain_breast", version=None)
    print(f"\nexported a SavedModel for TF Serving to {path}/ (models.config beside it)")
    server, grpc_target, rest_url = start_subprocess(base_path)
    try:
        print(f"started python -m serving.server: gRPC {grpc_target}, REST {rest_url}")
        with ImputeClient(grpc_target) as client:
            over_grpc = client.impute("gain_breast", rows)
        print("\nthe same rows imputed over gRPC (tensorflow.serving.PredictionService/Predict), first 6 columns:")
        print(over_grpc.iloc[:, :6].to_string(float_format=lambda v: f"{v:.3f}"))
        instances = [[None if np.isnan(v) else float(v) for v in row] for row in rows.to_numpy()]  # null = missing
        request = urllib.request.Request(
            f"{rest_url}/v1/models/gain_breast:predict", data=json.dumps({"instances": instances}).encode()
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            over_rest = np.asarray(json.loads(response.read())["predictions"])
        print(f"\nand over REST (POST {rest_url}/v1/models/gain_breast:predict), first 6 columns:")
        print(pd.DataFrame(over_rest[:, :6], index=rows.index, columns=rows.columns[:6]).to_string(float_format=lambda v: f"{v:.3f}"))
        assert np.allclose(over_rest, over_grpc.to_numpy(), rtol=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
    print("stopped the server")


if __name__ == "__main__":
    from keraszoo.console import run_cli

    run_cli(main, prog="python -m training.demo")
