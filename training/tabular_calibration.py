"""Calibration and `precision_threshold` of the tabular imputer, measured on rows it never saw.

    python -m training.tabular_calibration --dataset adult --seeds 3 --output benchmarks/results/tabular_calibration.md

For each categorical column of the table and each seed: a `SimpleImputer` from every other column is
fitted on a seeded 80% of the rows (its own 10% validation split inside, where the temperature and the
per-class cut-offs are fitted), then predicts the held-out 20% (rows where the column is observed).
Reported on those held-out cells: accuracy, the expected calibration error (15 equal-width bins) of
the top-class probability without the temperature (T = 1) and with it, and for each precision
threshold the share of cells imputed (coverage) and the precision of those imputations, which the
threshold promises (a precision on validation data, per class; see `keraszoo.tabular.calibration`).
"""
import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
import pandas as pd

THRESHOLDS = (0.0, 0.5, 0.8, 0.9, 0.95)


def run(dataset, seeds, thresholds=THRESHOLDS, data_dir=None, log=print):
    from keraszoo.tabular import SimpleImputer, calibration
    from training.tabular_benchmark import load_table

    frame = load_table(dataset, data_dir)
    categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    records = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(frame))
        cut = int(0.8 * len(frame))
        train, test = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
        for column in categorical:
            start = time.perf_counter()
            imputer = SimpleImputer([c for c in frame.columns if c != column], column, seed=seed).fit(train)
            fit_seconds = time.perf_counter() - start
            rows = test[test[column].notna()]
            truth = rows[column].astype(str).to_numpy()
            probabilities = imputer.predict_proba(rows)[column]
            classes = np.array(probabilities.columns, dtype=object)
            temperature = imputer.calibration_[column]["temperature"]
            labels = np.array([np.flatnonzero(classes == t)[0] if t in set(classes) else -1 for t in truth])
            known = labels >= 0  # labels outside the head's classes (rarer than its num_labels) count as wrong below
            calibrated = probabilities.to_numpy()
            raw = calibration.probabilities(np.log(np.clip(calibrated, 1e-30, None)) * temperature)  # undo the temperature
            record = {
                "dataset": dataset,
                "seed": seed,
                "column": column,
                "cells": len(rows),
                "classes": len(classes),
                "temperature": temperature,
                "accuracy": float(np.mean(classes[calibrated.argmax(axis=1)] == truth)),
                "ece_t1": calibration.expected_calibration_error(raw[known], labels[known]),
                "ece_calibrated": calibration.expected_calibration_error(calibrated[known], labels[known]),
                "fit_seconds": fit_seconds,
            }
            for threshold in thresholds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    imputed = imputer.predict(rows, precision_threshold=threshold)[f"{column}_imputed"].to_numpy(dtype=object)
                made = np.array([not pd.isna(v) for v in imputed])
                record[f"coverage@{threshold}"] = float(made.mean())
                record[f"precision@{threshold}"] = float(np.mean(imputed[made].astype(str) == truth[made])) if made.any() else np.nan
            records.append(record)
            log(
                f"{dataset} seed {seed} {column:16s} accuracy {record['accuracy']:.4f} ECE {record['ece_t1']:.4f} -> {record['ece_calibrated']:.4f} "
                f"(T {temperature:.3f}); @0.9 coverage {record['coverage@0.9']:.3f} precision {record['precision@0.9']:.4f}"
            )
    return pd.DataFrame(records)


def markdown(records, command, elapsed, thresholds=THRESHOLDS):
    import tensorflow as tf

    mean = records.groupby("column", sort=False).mean(numeric_only=True)
    std = records.groupby("column", sort=False).std(numeric_only=True)
    n = records["seed"].nunique()

    def cell(column, key, digits=4):
        value, spread = mean.loc[column, key], std.loc[column, key]
        return f"{value:.{digits}f}" if n == 1 or np.isnan(spread) else f"{value:.{digits}f} ± {spread:.{digits}f}"

    lines = [
        "# Tabular imputer: calibration and precision thresholds on held-out rows",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"pandas {pd.__version__}. Date: {time.strftime('%Y-%m-%d')}. Total wall time: {elapsed / 60:.1f} min.",
        "",
        "Protocol: `training/tabular_calibration.py`'s docstring. Mean ± sample standard deviation over "
        f"{n} seed(s) (n = {n}). ECE: expected calibration error of the top-class probability, 15 bins, on the held-out cells.",
        "",
        "| column | cells | accuracy | ECE, T = 1 | ECE, calibrated | T |",
        "|---|---|---|---|---|---|",
    ]
    for column in mean.index:
        lines.append(f"| {column} | {mean.loc[column, 'cells']:.0f} | {cell(column, 'accuracy')} | {cell(column, 'ece_t1')} | {cell(column, 'ece_calibrated')} | {cell(column, 'temperature', 3)} |")
    lines += ["", "Coverage (share of held-out cells imputed) and precision of those imputations, per `precision_threshold`:", ""]
    lines += ["| column | " + " | ".join(f"{t}: coverage / precision" for t in thresholds) + " |", "|---" * (len(thresholds) + 1) + "|"]
    for column in mean.index:
        lines.append(f"| {column} | " + " | ".join(f"{mean.loc[column, f'coverage@{t}']:.3f} / {mean.loc[column, f'precision@{t}']:.4f}" for t in thresholds) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    records = run(args.dataset, args.seeds, data_dir=args.data_dir, log=lambda s: print(s, file=sys.stderr, flush=True))
    command = "python -m training.tabular_calibration " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(records, command, time.perf_counter() - start)
    if args.output:
        records.to_csv(os.path.splitext(args.output)[0] + ".csv", index=False)
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
