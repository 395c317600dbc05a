"""Mixed-type tables (issue #16): the tabular imputer against classical imputers on the same masks.

    python -m training.tabular_benchmark --datasets adult,wine --miss-rates 0.1,0.3 --seeds 3 \\
        --output benchmarks/results/tabular_adult_wine.md   (committed: tabular_wine.md, tabular_adult.md)

Protocol. For each data set, missing rate and seed: remove cells of the whole table completely at
random (each cell with probability = the rate, seeded), on top of the cells the source already lacks
(adult's "?"); every model imputes that table (transductive, as `complete`), and is scored on the
removed cells that the source had observed: per categorical column accuracy and macro F1 (sklearn's
`f1_score(average="macro")` over the classes present in the truth or the imputation), per numeric
column the RMSE after min-max scaling by the truth's range. The summary averages over columns.
Then each fitted model imputes the first 10,000 rows of the table again (inductive, timed).

Tables: adult (`load_dataset("adult").features`: 14 columns, 8 categorical), and wine
(`load_dataset("wine")`: the 11 features, the numeric quality and the colour category; 13 columns).

Models:

* `tabular` (ours: `keraszoo.tabular.Completer` with `per_column=False`, one network for the table) and
  `tabular_per_column` (one `SimpleImputer` per column, Datawig's way and `complete`'s default), at
  their defaults; on request, `tabular_per_column_ple` (the same with `numeric_bins=8`, the
  piecewise-linear encoding of numeric inputs), `tabular_per_column_rounds3` (``rounds=3``: each
  round refits the per-column imputers on the table the round before completed, MissForest's
  iteration) and `tabular_per_column_ple_rounds3` (both);
* `mean_mode`: column mean / most frequent value;
* `knn`, `mice`, `missforest`: the zoo's classical imputers (their defaults) on a numeric matrix:
  numeric columns as they are, each categorical column as k - 1 dummy columns (one 0/1 column per
  observed category but its most frequent one, the baseline; a missing cell makes all of its dummies
  missing), min-max scaled on the observed cells; a categorical imputation is the category with the
  largest of its imputed dummies and the baseline's 1 - (sum of the dummies). Full one-hot blocks were
  tried first: each column of a block is then an exact linear function of the others, and MICE (and
  MissForest) imputed every colour of wine as the most frequent one (macro F1 0.4378, the mode's).
"""
import argparse
import os
import platform
import sys
import time

import numpy as np
import pandas as pd

MODELS = ("tabular", "tabular_per_column", "mean_mode", "knn", "mice", "missforest")
#: also runnable, not in the default list: variants of ours with non-default parameters.
VARIANTS = {
    "tabular_per_column_ple": {"per_column": True, "numeric_bins": 8},
    "tabular_per_column_rounds3": {"per_column": True, "rounds": 3},
    "tabular_per_column_ple_rounds3": {"per_column": True, "numeric_bins": 8, "rounds": 3},
}
TIMED_ROWS = 10_000


def load_table(name, data_dir=None):
    from keraszoo.data import load_dataset

    data = load_dataset(name, data_dir, download=os.environ.get("KERASZOO_OFFLINE") != "1")
    frame = data.features.copy()
    if name == "wine":
        frame["quality"] = data.labels.to_numpy()
        frame["colour"] = data.extras["colour"].to_numpy()
    elif name != "adult":
        raise ValueError(f"tabular_benchmark knows adult and wine, not {name!r}")
    return frame


def remove_cells(frame, rate, seed):
    """(holed frame, boolean [rows, columns] of the cells removed here that the source had observed)."""
    hide = np.random.default_rng(seed).random(frame.shape) < rate
    observed = ~frame.isna().to_numpy()
    holed = frame.copy()
    for j, name in enumerate(frame.columns):
        holed[name] = frame[name].mask(hide[:, j])
    return holed, hide & observed


class OneHotTable:
    """A mixed table as the numeric matrix the classical imputers take, and back (see the module docstring)."""

    def __init__(self, frame):
        self.columns = list(frame.columns)
        self.categorical = [c for c in self.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        # most frequent first: the first category of each column is its baseline (no dummy)
        self.categories = {c: list(frame[c].dropna().astype(str).value_counts().index) for c in self.categorical}

    def encode(self, frame):
        blocks = []
        for c in self.columns:
            if c in self.categorical:
                values = frame[c].astype(object).to_numpy()
                present = pd.notna(values)
                dummies = [np.where(present, (values == k).astype(float), np.nan) for k in self.categories[c][1:]]
                blocks.append(np.stack(dummies, axis=1) if dummies else np.zeros((len(frame), 0)))
            else:
                blocks.append(frame[c].to_numpy(dtype=float)[:, None])
        return np.concatenate(blocks, axis=1)

    def decode(self, matrix, like):
        out = like.copy()
        position = 0
        for c in self.columns:
            if c in self.categorical:
                width = len(self.categories[c]) - 1
                dummies = matrix[:, position : position + width]
                scores = np.concatenate([1.0 - dummies.sum(axis=1, keepdims=True), dummies], axis=1)
                out[c] = np.array(self.categories[c], dtype=object)[scores.argmax(axis=1)]
                position += width
            else:
                out[c] = matrix[:, position]
                position += 1
        return out


class Classical:
    """A zoo classical imputer (or mean/mode) behind the frame-in, frame-out interface."""

    def __init__(self, name, seed):
        self.name, self.seed = name, seed

    def fit(self, frame):
        from keraszoo.sklearn import ZooImputer

        self.table = OneHotTable(frame)
        params = {"random_state": self.seed} if self.name == "missforest" else {}
        self.imputer = ZooImputer("mean" if self.name == "mean_mode" else self.name, **params).fit(self.table.encode(frame))
        return self

    def transform(self, frame):
        return self.table.decode(self.imputer.transform(self.table.encode(frame)), frame)


class Ours:
    def __init__(self, seed, **params):
        self.seed, self.params = seed, params

    def fit(self, frame):
        from keraszoo.tabular import Completer

        self.completer = Completer(seed=self.seed, **self.params).fit(frame)
        return self

    def transform(self, frame):
        return self.completer.transform(frame)


def make_model(name, seed):
    if name in ("tabular", "tabular_per_column"):
        return Ours(seed, per_column=name == "tabular_per_column")
    if name in VARIANTS:
        return Ours(seed, **VARIANTS[name])
    if name in ("mean_mode", "knn", "mice", "missforest"):
        return Classical(name, seed)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS + tuple(VARIANTS))}")


def score(truth, imputed, scored):
    """{column: (metric, value)} rows: accuracy and macro F1 per categorical column, min-max RMSE per numeric one."""
    from sklearn.metrics import f1_score

    rows = []
    for j, c in enumerate(truth.columns):
        cells = scored[:, j]
        if not cells.any():
            continue
        true, got = truth[c].to_numpy()[cells], imputed[c].to_numpy()[cells]
        if pd.api.types.is_numeric_dtype(truth[c]):
            scale = float(truth[c].max() - truth[c].min()) or 1.0
            rmse = float(np.sqrt(np.mean(((got.astype(float) - true.astype(float)) / scale) ** 2)))
            rows.append({"column": c, "kind": "numeric", "rmse": rmse, "cells": int(cells.sum())})
        else:
            true, got = true.astype(str), np.array([str(v) for v in got])
            rows.append(
                {
                    "column": c,
                    "kind": "categorical",
                    "accuracy": float(np.mean(true == got)),
                    "macro_f1": float(f1_score(true, got, average="macro", zero_division=0)),
                    "cells": int(cells.sum()),
                }
            )
    return rows


def run(datasets, models, rates, seeds, data_dir=None, log=print, checkpoint=None, done=None):
    """Every (dataset, rate, seed, model) run's per-column records; `checkpoint(records)` after each run.

    `done`: records of an earlier run (its CSV); the runs it holds are kept, not run again."""
    records = [] if done is None else done.to_dict("records")
    finished = {(r["dataset"], float(r["miss_rate"]), int(r["seed"]), r["model"]) for r in records}
    for dataset in datasets:
        truth = load_table(dataset, data_dir)
        for rate in rates:
            for seed in range(seeds):
                holed, scored = remove_cells(truth, rate, seed)
                for name in models:
                    if (dataset, float(rate), seed, name) in finished:
                        continue
                    start = time.perf_counter()
                    model = make_model(name, seed).fit(holed)
                    imputed = model.transform(holed)
                    fit_seconds = time.perf_counter() - start
                    start = time.perf_counter()
                    model.transform(holed.iloc[:TIMED_ROWS])
                    impute_seconds = time.perf_counter() - start
                    left = int(imputed.isna().to_numpy()[scored].sum())
                    for row in score(truth, imputed, scored):
                        records.append(
                            {"dataset": dataset, "miss_rate": rate, "seed": seed, "model": name, **row, "fit_impute_seconds": fit_seconds, "impute_10k_seconds": impute_seconds, "left_missing": left}
                        )
                    summary = pd.DataFrame([r for r in records if r["dataset"] == dataset and r["miss_rate"] == rate and r["seed"] == seed and r["model"] == name])
                    log(
                        f"{dataset} rate {rate} seed {seed} {name:20s} macro F1 {summary['macro_f1'].mean():.4f} accuracy {summary['accuracy'].mean():.4f} "
                        f"numeric RMSE {summary['rmse'].mean():.4f}  fit+impute {fit_seconds:.1f} s, impute 10k {impute_seconds:.2f} s"
                    )
                    if checkpoint is not None:
                        checkpoint(pd.DataFrame(records))
    return pd.DataFrame(records)


def summarise(records):
    """Per dataset, rate and model: mean over columns per seed, then mean ± sample std over seeds."""
    per_seed = records.groupby(["dataset", "miss_rate", "model", "seed"]).agg(
        macro_f1=("macro_f1", "mean"), accuracy=("accuracy", "mean"), rmse=("rmse", "mean"), fit=("fit_impute_seconds", "first"), impute=("impute_10k_seconds", "first")
    )
    return per_seed.groupby(["dataset", "miss_rate", "model"]).agg(["mean", "std", "count"])


def _cell(row, metric):
    mean, std, n = row[(metric, "mean")], row[(metric, "std")], int(row[(metric, "count")])
    return f"{mean:.4f} ± {std:.4f} (n={n})" if n > 1 else f"{mean:.4f} (n=1)"


def markdown(records, command, elapsed, models):
    import tensorflow as tf

    models = list(models) + [m for m in records["model"].unique() if m not in models]  # a resumed file keeps earlier models

    lines = [
        "# Mixed-type tables: the tabular imputer against classical imputers (issue #16)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, pandas {pd.__version__}, {platform.system()}. Date: {time.strftime('%Y-%m-%d')}. Total wall time: {elapsed / 60:.1f} min.",
        "",
        "Protocol: see `training/tabular_benchmark.py`'s docstring (MCAR cells on the whole table, every model imputes "
        "the same holed table, scored on the removed cells the source had observed; classical models on a one-hot "
        "matrix). ± is the sample standard deviation over seeds (n = seeds); each seed's value is the mean over columns.",
        "",
        "Per-run, per-column numbers: the CSV beside this file.",
        "",
    ]
    summary = summarise(records)
    for (dataset, rate), block in summary.groupby(level=[0, 1]):
        lines += [f"## {dataset}, {rate:.0%} MCAR", "", "| model | macro F1 (categorical) | accuracy (categorical) | RMSE (numeric, min-max) | fit + impute table (s) | impute 10,000 rows (s) |", "|---|---|---|---|---|---|"]
        for model in models:
            if (dataset, rate, model) not in block.index:
                continue
            row = block.loc[(dataset, rate, model)]
            lines.append(
                f"| {model} | {_cell(row, 'macro_f1')} | {_cell(row, 'accuracy')} | {_cell(row, 'rmse')} | {row[('fit', 'mean')]:.1f} | {row[('impute', 'mean')]:.2f} |"
            )
        lines.append("")
    per_column = records.groupby(["dataset", "miss_rate", "column", "model"]).agg(macro_f1=("macro_f1", "mean"), rmse=("rmse", "mean")).reset_index()
    lines += ["## Per column (mean over seeds): macro F1 for categorical columns, RMSE for numeric ones", ""]
    for (dataset, rate), block in per_column.groupby(["dataset", "miss_rate"]):
        present = [m for m in models if m in set(block["model"])]
        lines += [f"### {dataset}, {rate:.0%} MCAR", "", "| column | " + " | ".join(present) + " | best |", "|---" * (len(present) + 2) + "|"]
        for column, rows in block.groupby("column", sort=False):
            rows = rows.set_index("model")
            categorical = rows["macro_f1"].notna().any()
            values = rows["macro_f1" if categorical else "rmse"]
            best = values.idxmax() if categorical else values.idxmin()
            lines.append(f"| {column} ({'F1' if categorical else 'RMSE'}) | " + " | ".join(f"{values[m]:.4f}" for m in present) + f" | {best} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="adult,wine")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--miss-rates", default="0.1,0.3")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None, help="markdown file; the CSV goes beside it")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in the output's CSV and run only the others")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    for name in models:
        make_model(name, 0)
    rates = [float(r) for r in args.miss_rates.split(",")]
    start = time.perf_counter()
    command = "python -m training.tabular_benchmark " + " ".join(argv if argv is not None else sys.argv[1:])

    def write(records, partial=True):
        # rewritten after every run, so that a long run stopped early keeps what it measured
        text = markdown(records, command, time.perf_counter() - start, models)
        if partial:
            text = text.replace("Total wall time", "**Partial: the run was still going.** Wall time so far", 1)
        if args.output:
            records.to_csv(os.path.splitext(args.output)[0] + ".csv", index=False)
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    done = None
    if args.resume:
        if not args.output or not os.path.exists(os.path.splitext(args.output)[0] + ".csv"):
            parser.error("--resume needs --output with its CSV from an earlier run")
        done = pd.read_csv(os.path.splitext(args.output)[0] + ".csv")
        command = command.replace(" --resume", "") + "  (resumed: the runs of an earlier, stopped run of this command were kept; wall time is this part's)"
    records = run(args.datasets.split(","), models, rates, args.seeds, args.data_dir, log=lambda s: print(s, file=sys.stderr, flush=True), checkpoint=write, done=done)
    print(write(records, partial=False))


if __name__ == "__main__":
    main()
