"""Reproduce the papers' imputation tables: RMSE (mean ± std over seeds) per model and dataset.

    python -m training.benchmark --models mean,knn,mice,missforest,matrix,em,gain \\
        --datasets spam,letter,credit --miss-rate 0.2 --seeds 5

Protocol (GAIN's reference code, which g2lgn.md Table 1 follows): for each seed, remove entries of
the whole table completely at random (MCAR) at `--miss-rate`; fit the imputer on the incomplete
table; impute that same table; RMSE over the removed entries after normalising truth and imputation
with the truth's per-column min and max (`keraszoo.metrics.rmse`). `--protocol holdout` instead fits
on 80% of the rows and scores the other 20% (inductive imputation of unseen rows).

Writes a markdown table (and prints it) with the exact command, machine and versions.
"""
import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

#: g2lgn.md Table 1 (RMSE, 20% MCAR), the numbers we compare against.
PAPER_TABLE_1 = {
    "mice": {"spam": "0.0691±0.0007", "credit": "0.2574±0.0028", "letter": "0.1537±0.0029"},
    "missforest": {"spam": "0.0564±0.0011", "credit": "0.1991±0.0005", "letter": "0.1542±0.0018"},
    "matrix": {"spam": "0.0604±0.0008", "credit": "0.2533±0.0007", "letter": "0.1448±0.0004"},
    "em": {"spam": "0.0754±0.0009", "credit": "0.2419±0.0026", "letter": "0.1575±0.0006"},
    "knn": {"spam": "0.0581±0.0022", "credit": "0.1923±0.0015", "letter": "0.1302±0.0007"},
    "gain": {"spam": "0.0529±0.0011", "credit": "0.1801±0.0018", "letter": "0.1296±0.0005"},
    "g2lgn": {"spam": "0.0500±0.0008", "credit": "0.1536±0.0010", "letter": "0.1229±0.0004"},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mean,knn,mice,missforest,matrix,em,gain", help="comma-separated registered model names")
    parser.add_argument("--datasets", default="spam,letter,credit", help="comma-separated dataset names")
    parser.add_argument("--miss-rate", type=float, default=0.2, help="MCAR missing rate in (0, 1)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. seeds-1)")
    parser.add_argument("--protocol", choices=["transductive", "holdout"], default="transductive")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $KERASZOO_DATA_DIR)")
    parser.add_argument("--output", default=None, help="markdown file (default: benchmarks/results/uci_mcar<rate>.md)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="MODEL.PARAM=VALUE", help="override a parameter, e.g. gain.iterations=5000"
    )
    args = parser.parse_args(argv)
    import keraszoo
    from keraszoo.data import list_datasets

    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for name in args.models:
        if name not in keraszoo.list_models():
            parser.error(f"unknown model {name!r}; registered models: {', '.join(keraszoo.list_models())}")
    for name in args.datasets:
        if name not in list_datasets():
            parser.error(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")
    if not 0.0 < args.miss_rate < 1.0:
        parser.error(f"--miss-rate must be in (0, 1), got {args.miss_rate}")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    args.overrides = _parse_overrides(parser, args.set, args.models)
    return args


def _parse_overrides(parser, items, models):
    import ast

    overrides = {m: {} for m in models}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, param = key.partition(".")
        if not sep or not dot or model not in overrides:
            parser.error(f"--set expects MODEL.PARAM=VALUE with MODEL among --models, got {item!r}")
        try:
            overrides[model][param] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[model][param] = value
    return overrides


def run_one(model, params, truth, seed, miss_rate, protocol):
    """Fit and score one (model, dataset, seed); returns (rmse, fit seconds)."""
    from keraszoo import metrics
    from keraszoo.data import mcar_mask
    from keraszoo.registry import model_parameters
    from keraszoo.sklearn import ZooImputer

    mask = mcar_mask(truth.shape, miss_rate, seed=seed)
    incomplete = np.where(mask == 1, truth, np.nan)
    params = dict(params)
    if "seed" in model_parameters(model):
        params.setdefault("seed", seed)
    elif "random_state" in model_parameters(model):
        params.setdefault("random_state", seed)
    imputer = ZooImputer(model, **params)
    if protocol == "transductive":
        start = time.perf_counter()
        imputed = imputer.fit(incomplete).transform(incomplete)
        seconds = time.perf_counter() - start
        return metrics.rmse(truth, imputed, mask), seconds
    order = np.random.default_rng(seed).permutation(len(truth))
    cut = int(0.8 * len(truth))
    train, test = order[:cut], order[cut:]
    start = time.perf_counter()
    imputer.fit(incomplete[train])
    seconds = time.perf_counter() - start
    imputed = imputer.transform(incomplete[test])
    return metrics.rmse(truth[test], imputed, mask[test]), seconds


def machine_description():
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, TensorFlow {tf.__version__}, {platform.system()}"


def format_markdown(args, results, command, elapsed):
    lines = [
        f"# RMSE on UCI tables, {int(round(args.miss_rate * 100))}% MCAR ({args.protocol} protocol)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine_description()}. Date: {datetime.date.today().isoformat()}. Total wall time: {elapsed / 60:.1f} min.",
        "",
        "Protocol: "
        + (
            "as GAIN's reference code and g2lgn.md Table 1 — MCAR over the whole table, fit on the incomplete table, impute it, "
            "RMSE over the removed entries normalised by the truth's per-column min/max."
            if args.protocol == "transductive"
            else "MCAR over the whole table; fit on a random 80% of rows, impute the other 20% (unseen), RMSE over their removed entries, "
            "normalised by the truth's per-column min/max."
        )
        + f" Seeds 0..{args.seeds - 1} (the seed sets the mask, the model and the shuffling). Every column of each table is used "
        "(label column excluded). Model parameters are the zoo's defaults"
        + ("" if not any(args.overrides.values()) else f", with overrides {args.overrides}")
        + ".",
        "",
        "RMSE, mean ± std over seeds (lower is better); paper = g2lgn.md Table 1 where it reports the model.",
        "",
        "| model | " + " | ".join(f"{d} (ours) | {d} (paper)" for d in args.datasets) + " | mean fit time (s) |",
        "|---|" + "---|---|" * len(args.datasets) + "---|",
    ]
    for model in args.models:
        cells, times = [], []
        for dataset in args.datasets:
            scores = [r[0] for r in results[(model, dataset)]]
            times += [r[1] for r in results[(model, dataset)]]
            cells.append(f"{np.mean(scores):.4f} ± {np.std(scores):.4f}")
            cells.append(PAPER_TABLE_1.get(model, {}).get(dataset, "—"))
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {np.mean(times):.1f} |")
    lines += ["", "Fit time per dataset (s, mean over seeds):", "", "| model | " + " | ".join(args.datasets) + " |"]
    lines.append("|---|" + "---|" * len(args.datasets))
    for model in args.models:
        lines.append(f"| {model} | " + " | ".join(f"{np.mean([r[1] for r in results[(model, d)]]):.1f}" for d in args.datasets) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    from keraszoo.data import load_dataset

    command = "python -m training.benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
    results = {}
    start = time.perf_counter()
    total = len(args.models) * len(args.datasets) * args.seeds
    done = 0
    for dataset in args.datasets:
        x = load_dataset(dataset, data_dir=args.data_dir).numeric_array()
        for model in args.models:
            for seed in range(args.seeds):
                score, seconds = run_one(model, args.overrides[model], x, seed, args.miss_rate, args.protocol)
                results.setdefault((model, dataset), []).append((score, seconds))
                done += 1
                print(f"[{done}/{total}] {dataset:8s} {model:12s} seed {seed}: RMSE {score:.4f} ({seconds:.1f} s)", flush=True)
    report = format_markdown(args, results, command, time.perf_counter() - start)
    print()
    print(report)
    output = args.output or os.path.join(
        "benchmarks", "results", f"uci_mcar{int(round(args.miss_rate * 100))}" + ("" if args.protocol == "transductive" else "_holdout") + ".md"
    )
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output, "w") as f:
        f.write(report)
    print(f"written to {output}")
    return results


if __name__ == "__main__":
    main()
