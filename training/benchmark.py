"""Reproduce the papers' imputation tables: RMSE (mean ± std over seeds) per model and dataset.

    python -m training.benchmark --models mean,knn,mice,missforest,matrix,em,gain \\
        --datasets spam,letter,credit --miss-rate 0.2 --seeds 5
    python -m training.benchmark --models mean,knn --datasets spam --miss-rates 0.1,0.2,0.3,0.4,0.5 --seeds 3
    python -m training.benchmark --models mean,knn,gain --datasets credit --dims 5,10,15,20,23 --miss-rate 0.2

Protocol (GAIN's reference code, which g2lgn.md Table 1 follows): for each seed, remove entries of
the whole table completely at random (MCAR) at the missing rate; fit the imputer on the incomplete
table; impute that same table; RMSE over the removed entries after normalising truth and imputation
with the truth's per-column min and max (`keraszoo.metrics.rmse`). `--protocol holdout` instead fits
on 80% of the rows and scores the other 20% (inductive imputation of unseen rows).
`--round-discrete` applies the reference code's last step before scoring: every column with fewer
than 20 distinct observed values (in the rows the imputer was fitted on) has its imputations rounded
to the nearest integer (`round_discrete_columns`). It is off by default: it is a post-processing the
GAIN paper does not describe, and it raises RMSE on our tables (see benchmarks/results/README.md).

Sweeps: `--miss-rates 0.1,0.2,...` runs each rate (`--miss-rate R` is the one-rate form) and
`--dims 5,10,...` runs on the first d feature columns of each table, in file order (label excluded).
g2lgn.md Fig. 4 ("RMSE ... on Credit dataset for various dimension numbers") does not say which
columns it keeps, so "the first d" is our choice. The mask is drawn for the whole table from the seed
and then cut to those columns, so a smaller d scores a subset of the same removed entries and the
curve is not blurred by a fresh mask per d. Every (model, dataset, rate, dims, seed) is one run.

Outputs, for `--output PATH.md`: PATH.md (markdown with the exact command, machine, versions and
protocol; also printed), PATH.csv (one row per run: model, dataset, miss_rate, dims, seed, rmse,
fit_seconds) and, when a sweep has more than one value, PNG plots beside them:
PATH_rmse_vs_missing_rate.png and/or PATH_rmse_vs_dims.png (one line per model, error bars = std over
seeds, one panel per dataset; needs matplotlib). Progress goes to stderr: a live bar on a terminal,
a line per finished run otherwise, nothing with --quiet.
"""
import argparse
import collections
import csv
import datetime
import os
import platform
import shlex
import shutil
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
PAPER_MISS_RATE = 0.2
#: GAIN's reference code rounds the imputations of columns with fewer distinct observed values than this.
DISCRETE_MAX_LEVELS = 20

#: One finished run. `rmse` and `fit_seconds` come first so `run[0]`, `run[1]` read as before sweeps existed;
#: `dims` is the number of columns actually used.
Run = collections.namedtuple("Run", "rmse fit_seconds miss_rate dims seed")
CSV_COLUMNS = ("model", "dataset", "miss_rate", "dims", "seed", "rmse", "fit_seconds")
PLOT_SUFFIXES = {"miss_rate": "_rmse_vs_missing_rate.png", "dims": "_rmse_vs_dims.png"}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training.benchmark",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--models", default="mean,knn,mice,missforest,matrix,em,gain", help="comma-separated registered model names")
    parser.add_argument("--datasets", default="spam,letter,credit", help="comma-separated dataset names")
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument("--miss-rate", type=float, default=None, help="MCAR missing rate in (0, 1) (default 0.2)")
    rates.add_argument("--miss-rates", default=None, metavar="R1,R2,...", help="sweep: comma-separated MCAR missing rates in (0, 1)")
    parser.add_argument(
        "--dims", default=None, metavar="D1,D2,...", help="sweep: use the first d feature columns of each table (default: all columns)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. seeds-1)")
    parser.add_argument("--protocol", choices=["transductive", "holdout"], default="transductive")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $KERASZOO_DATA_DIR)")
    parser.add_argument(
        "--output", default=None, help="markdown file; the CSV and plots go beside it (default: benchmarks/results/uci_mcar<rate>.md)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="MODEL.PARAM=VALUE", help="override a parameter, e.g. gain.iterations=5000"
    )
    parser.add_argument(
        "--round-discrete",
        action="store_true",
        help=f"round the imputations of columns with fewer than {DISCRETE_MAX_LEVELS} distinct observed values, as GAIN's reference code does",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--note", action="append", default=[], metavar="TEXT", help="add a sentence to the report's protocol section (e.g. a reduction from the paper's protocol)"
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    import keraszoo
    from keraszoo.data import list_datasets

    args.models = _unique(m.strip() for m in args.models.split(",") if m.strip())
    args.datasets = _unique(d.strip() for d in args.datasets.split(",") if d.strip())
    if not args.models or not args.datasets:
        parser.error(f"--models and --datasets need at least one name; registered models: {', '.join(keraszoo.list_models())}; "
                     f"datasets: {', '.join(list_datasets())}")
    for name in args.models:
        if name not in keraszoo.list_models():
            parser.error(f"unknown model {name!r}; registered models: {', '.join(keraszoo.list_models())}")
    for name in args.datasets:
        if name not in list_datasets():
            parser.error(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")

    if args.miss_rates is not None:
        args.miss_rates = _parse_list(parser, "--miss-rates", args.miss_rates, float, "numbers")
        for rate in args.miss_rates:
            if not 0.0 < rate < 1.0:
                parser.error(f"--miss-rates must each be in (0, 1), got {rate}")
    else:
        rate = PAPER_MISS_RATE if args.miss_rate is None else args.miss_rate
        if not 0.0 < rate < 1.0:
            parser.error(f"--miss-rate must be in (0, 1), got {rate}")
        args.miss_rates = [rate]
    args.miss_rate = args.miss_rates[0]  # the one-rate form, for titles and the default file name

    if args.dims is not None:
        args.dims = _parse_list(parser, "--dims", args.dims, int, "whole numbers")
        for d in args.dims:
            if d < 1:
                parser.error(f"--dims must each be at least 1, got {d}")
    else:
        args.dims = [None]  # every column
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    args.overrides = _parse_overrides(parser, args.set, args.models)
    return args


def _unique(items):
    return list(dict.fromkeys(items))


def _parse_list(parser, flag, text, convert, what):
    try:
        values = _unique(convert(item.strip()) for item in text.split(",") if item.strip())
    except ValueError:
        parser.error(f"{flag} expects comma-separated {what}, e.g. {flag} {'0.1,0.2,0.3' if convert is float else '5,10,20'}; got {text!r}")
    if not values:
        parser.error(f"{flag} needs at least one value")
    return values


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


def check_dims(dims, tables):
    """Error message if a requested number of dimensions exceeds a table's columns, else None."""
    for d in dims:
        for name, table in tables.items():
            if d is not None and d > table.shape[1]:
                valid = ", ".join(f"{n}: 1..{t.shape[1]}" for n, t in tables.items())
                return f"--dims {d} is more than dataset {name!r} has ({table.shape[1]} feature columns); valid: {valid}"
    return None


def round_discrete_columns(imputed, incomplete, fitted_on, max_levels=DISCRETE_MAX_LEVELS):
    """`imputed` with its imputed entries (NaN in `incomplete`, the rows it completes) rounded to the
    nearest integer in every column that has fewer than `max_levels` distinct observed values in
    `fitted_on` (the rows the imputer was fitted on), as GAIN's reference code does before scoring.
    Observed entries are left as they are (the reference code rounds them too; they are not scored)."""
    rounded = np.array(imputed, dtype=np.float64, copy=True)
    for j in range(fitted_on.shape[1]):
        observed = fitted_on[:, j][~np.isnan(fitted_on[:, j])]
        if len(np.unique(observed)) < max_levels:
            missing = np.isnan(incomplete[:, j])
            rounded[missing, j] = np.round(rounded[missing, j])
    return rounded


def run_one(model, params, truth, seed, miss_rate, protocol, dims=None, round_discrete=False):
    """Fit and score one (model, dataset, rate, dims, seed); returns (rmse, fit seconds).

    `dims`: use only the first `dims` columns (None: all). The mask is drawn for the whole table and
    cut, so runs that differ only in `dims` share their removed entries. `round_discrete`: round the
    imputations as GAIN's reference code does (`round_discrete_columns`) before scoring.
    """
    from keraszoo import metrics
    from keraszoo.data import mcar_mask
    from keraszoo.registry import model_parameters
    from keraszoo.sklearn import ZooImputer

    mask = mcar_mask(truth.shape, miss_rate, seed=seed)[:, :dims]
    truth = truth[:, :dims]
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
        if round_discrete:
            imputed = round_discrete_columns(imputed, incomplete, incomplete)
        return metrics.rmse(truth, imputed, mask), seconds
    order = np.random.default_rng(seed).permutation(len(truth))
    cut = int(0.8 * len(truth))
    train, test = order[:cut], order[cut:]
    start = time.perf_counter()
    imputer.fit(incomplete[train])
    seconds = time.perf_counter() - start
    imputed = imputer.transform(incomplete[test])
    if round_discrete:
        imputed = round_discrete_columns(imputed, incomplete[test], incomplete[train])
    return metrics.rmse(truth[test], imputed, mask[test]), seconds


# --------------------------------------------------------------------------------------------------
# progress
def _clock(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Progress over runs on `stream` (stderr): a bar redrawn in place on a terminal, a line per finished
    run otherwise (logs, CI), nothing when disabled. The ETA assumes the remaining runs take as long as
    the finished ones on average (`main` interleaves the models so that holds roughly)."""

    def __init__(self, total, stream=None, enabled=True, width=24):
        self.total, self.done, self.width = total, 0, width
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.live = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.start_time = time.perf_counter()

    def _times(self):
        elapsed = time.perf_counter() - self.start_time
        eta = "?" if not self.done else _clock(elapsed / self.done * (self.total - self.done))
        return f"{_clock(elapsed)} elapsed, ETA {eta}"

    def start(self, label):
        """Show the run about to start (terminal only: a log gets its line when it finishes)."""
        if self.live:
            filled = self.width * self.done // max(self.total, 1)
            bar = f"[{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total} {self._times()} | {label}"
            columns = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r\033[K" + bar[: columns - 1])
            self.stream.flush()

    def finish(self, message):
        """Count a finished run and report it: above the bar on a terminal, as one line otherwise."""
        self.done += 1
        if self.live:
            self.stream.write(f"\r\033[K[{self.done}/{self.total}] {message}\n")
        elif self.enabled:
            self.stream.write(f"[{self.done}/{self.total}, {self._times()}] {message}\n")
        if self.enabled:
            self.stream.flush()

    def close(self):
        if self.enabled:
            clear = "\r\033[K" if self.live else ""
            self.stream.write(f"{clear}{self.done}/{self.total} runs in {_clock(time.perf_counter() - self.start_time)}\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------------
# reports
def machine_description():
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, TensorFlow {tf.__version__}, {platform.system()}"


def _percent(rate):
    return f"{rate * 100:g}%"


def _group(results):
    """(model, dataset, miss_rate, dims) -> list of Runs over seeds."""
    groups = {}
    for (model, dataset), runs in results.items():
        for run in runs:
            groups.setdefault((model, dataset, run.miss_rate, run.dims), []).append(run)
    return groups


def _columns_used(dims, ncols):
    return ncols if dims is None else dims


def _mean_std(runs):
    scores = [r.rmse for r in runs]
    return f"{np.mean(scores):.4f} ± {np.std(scores):.4f}"


def sidecar_paths(output, args):
    """The CSV and PNG files written beside the markdown `output`."""
    stem = os.path.splitext(output)[0]
    paths = {"csv": stem + ".csv"}
    if len(args.miss_rates) > 1:
        paths["miss_rate"] = stem + PLOT_SUFFIXES["miss_rate"]
    if len(args.dims) > 1:
        paths["dims"] = stem + PLOT_SUFFIXES["dims"]
    return paths


def format_markdown(args, results, command, elapsed, ncols=None, paths=None):
    """The report. `ncols`: dataset -> number of feature columns; `paths`: from `sidecar_paths`."""
    ncols = ncols or {}
    paths = paths or {}
    rate_sweep, dims_sweep = len(args.miss_rates) > 1, len(args.dims) > 1
    if rate_sweep and dims_sweep:
        title = f"# RMSE vs missing rate and number of dimensions, MCAR ({args.protocol} protocol)"
    elif rate_sweep:
        title = f"# RMSE vs missing rate, MCAR ({args.protocol} protocol)"
    elif dims_sweep:
        title = f"# RMSE vs number of dimensions, {int(round(args.miss_rate * 100))}% MCAR ({args.protocol} protocol)"
    else:
        title = f"# RMSE on UCI tables, {int(round(args.miss_rate * 100))}% MCAR ({args.protocol} protocol)"
    if args.dims == [None]:
        columns = "Every column of each table is used (label column excluded)"
    else:
        columns = (
            f"Dimensions {', '.join(map(str, args.dims))}: a run with d dimensions uses the first d feature columns of the table "
            "in file order (label column excluded); g2lgn.md Fig. 4 does not say which columns it keeps, so that choice is ours. "
            "The mask is drawn for the whole table from the seed and cut to those columns, so a smaller d scores a subset of the "
            "same removed entries"
        )
    lines = [
        title,
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
        + (f" Missing rates: {', '.join(_percent(r) for r in args.miss_rates)}." if rate_sweep else "")
        + f" Seeds 0..{args.seeds - 1} (the seed sets the mask, the model and the shuffling). {columns}. Model parameters are the zoo's defaults"
        + ("" if not any(args.overrides.values()) else f", with overrides {args.overrides}")
        + "."
        + (
            f" Imputations of columns with fewer than {DISCRETE_MAX_LEVELS} distinct observed values are rounded to integers before "
            "scoring (`--round-discrete`, as GAIN's reference code does)."
            if getattr(args, "round_discrete", False)
            else ""
        )
        + "".join(f" {note.strip()}" for note in getattr(args, "note", [])),
        "",
    ]
    # Links relative to the markdown, which sits beside its CSV and plots.
    if "csv" in paths:
        name = os.path.basename(paths["csv"])
        lines += [f"Per-run numbers: [`{name}`]({name}) (columns {', '.join(CSV_COLUMNS)}).", ""]
    for key, what in (("miss_rate", "RMSE vs missing rate"), ("dims", "RMSE vs number of dimensions")):
        if key in paths:
            lines += [f"![{what}]({os.path.basename(paths[key])})", ""]
    if rate_sweep or dims_sweep:
        lines += _sweep_tables(args, results, ncols)
    else:
        lines += _single_tables(args, results)
    return "\n".join(lines).rstrip("\n") + "\n"


def _single_tables(args, results):
    # Table 1 is 20% MCAR on every column; a paper column elsewhere would compare unlike with unlike.
    paper = args.miss_rate == PAPER_MISS_RATE and args.dims == [None]
    lines = [
        "RMSE, mean ± std over seeds (lower is better)"
        + ("; paper = g2lgn.md Table 1 where it reports the model." if paper else " (g2lgn.md Table 1 is at 20% MCAR on every column, so no paper column)."),
        "",
        "| model | " + " | ".join(f"{d} (ours) | {d} (paper)" if paper else d for d in args.datasets) + " | mean fit time (s) |",
        "|---|" + ("---|---|" if paper else "---|") * len(args.datasets) + "---|",
    ]
    for model in args.models:
        cells, times = [], []
        for dataset in args.datasets:
            runs = results[(model, dataset)]
            times += [r.fit_seconds for r in runs]
            cells.append(_mean_std(runs))
            if paper:
                cells.append(PAPER_TABLE_1.get(model, {}).get(dataset, "—"))
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {np.mean(times):.1f} |")
    lines += ["", "Fit time per dataset (s, mean over seeds):", "", "| model | " + " | ".join(args.datasets) + " |"]
    lines.append("|---|" + "---|" * len(args.datasets))
    for model in args.models:
        lines.append(f"| {model} | " + " | ".join(f"{np.mean([r.fit_seconds for r in results[(model, d)]]):.1f}" for d in args.datasets) + " |")
    return lines


def _sweep_tables(args, results, ncols):
    """One RMSE table and one fit-time table per dataset (and per value of the other sweep if both sweep)."""
    groups = _group(results)
    rate_sweep = len(args.miss_rates) > 1
    lines = ["RMSE, mean ± std over seeds (lower is better); fit time in seconds, mean over seeds.", ""]
    for dataset in args.datasets:
        n = ncols.get(dataset)
        # x: the swept quantity; fixed: the other one, one table each.
        if rate_sweep:
            panels = [(f"{_columns_used(d, n)} dimensions", [(r, d) for r in args.miss_rates]) for d in args.dims]
            heads = [_percent(r) for r in args.miss_rates]
        else:
            panels = [(f"{_percent(r)} MCAR", [(r, d) for d in args.dims]) for r in args.miss_rates]
            heads = [f"d={_columns_used(d, n)}" for d in args.dims]
        for fixed, cells in panels:
            keys = [(rate, _columns_used(d, n)) for rate, d in cells]
            paper = [i for i, (rate, d) in enumerate(cells) if rate == PAPER_MISS_RATE and d in (None, n)]
            lines += [f"### {dataset} ({n} feature columns), {fixed}" if n else f"### {dataset}, {fixed}", ""]
            header = heads + (["paper (Table 1, 20%, all columns)"] if paper else [])
            lines += ["| model | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
            for model in args.models:
                row = [_mean_std(groups[(model, dataset, rate, d)]) for rate, d in keys]
                if paper:
                    row.append(PAPER_TABLE_1.get(model, {}).get(dataset, "—"))
                lines.append(f"| {model} | " + " | ".join(row) + " |")
            lines += ["", "Fit time (s):", "", "| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
            for model in args.models:
                times = [np.mean([r.fit_seconds for r in groups[(model, dataset, *key)]]) for key in keys]
                lines.append(f"| {model} | " + " | ".join(f"{t:.1f}" for t in times) + " |")
            lines.append("")
    return lines


def write_csv(path, results):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for (model, dataset), runs in results.items():
            for r in runs:
                writer.writerow([model, dataset, r.miss_rate, r.dims, r.seed, f"{r.rmse:.6f}", f"{r.fit_seconds:.3f}"])


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise SystemExit(
            f"python -m training.benchmark: error: plots of a sweep need matplotlib ({err}); "
            "install it with `pip install matplotlib` (or keraszoo[dev]), or sweep a single value"
        ) from err


def write_plot(path, args, results, ncols, x_key):
    """RMSE vs `x_key` ("miss_rate" or "dims"): one panel per dataset (per value of the other sweep too,
    as rows, if both sweep), one line per model, error bars = std over seeds."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = _group(results)
    rows = args.dims if x_key == "miss_rate" else args.miss_rates
    fig = Figure(figsize=(4.5 * len(args.datasets), 3.6 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)  # Agg: PNGs without a display and without pyplot's global state
    axes = fig.subplots(len(rows), len(args.datasets), squeeze=False)
    for i, fixed in enumerate(rows):
        for j, dataset in enumerate(args.datasets):
            ax, n = axes[i][j], ncols[dataset]
            if x_key == "miss_rate":
                points = [(rate, rate, _columns_used(fixed, n)) for rate in args.miss_rates]
                ax.set_title(f"{dataset}, {_columns_used(fixed, n)} dims")
                ax.set_xlabel("missing rate (MCAR)")
            else:
                points = [(_columns_used(d, n), fixed, _columns_used(d, n)) for d in args.dims]
                ax.set_title(f"{dataset}, {_percent(fixed)} MCAR")
                ax.set_xlabel("number of dimensions (first d columns)")
            points.sort()
            xs = [x for x, _, _ in points]
            for model in args.models:
                scores = [[r.rmse for r in groups[(model, dataset, rate, d)]] for _, rate, d in points]
                ax.errorbar(xs, [np.mean(s) for s in scores], yerr=[np.std(s) for s in scores], marker="o", capsize=3, label=model)
            ax.set_xticks(xs)
            if x_key == "miss_rate":
                ax.set_xticklabels([_percent(x) for x in xs])
            ax.set_ylabel("RMSE")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------------------------------
def default_output(args):
    rates = f"{int(round(args.miss_rate * 100))}" if len(args.miss_rates) == 1 else "_rates"
    dims = "" if len(args.dims) == 1 else "_dims"
    holdout = "" if args.protocol == "transductive" else "_holdout"
    return os.path.join("benchmarks", "results", f"uci_mcar{rates}{dims}{holdout}.md")


def main(argv=None):
    """Run every (model, dataset, rate, dims, seed); returns {(model, dataset): [Run, ...]}."""
    args = parse_args(argv)
    from keraszoo.data import load_dataset

    command = "python -m training.benchmark " + shlex.join(sys.argv[1:] if argv is None else argv)  # quoted: copy-pastable
    output = args.output or default_output(args)
    paths = sidecar_paths(output, args)
    # Load and check everything before the first run, so bad input fails in seconds, not after an hour.
    tables = {name: load_dataset(name, data_dir=args.data_dir).numeric_array() for name in args.datasets}
    ncols = {name: table.shape[1] for name, table in tables.items()}
    problem = check_dims([d for d in args.dims if d is not None], tables)
    if problem:
        build_parser().error(problem)
    if len(paths) > 1:
        _require_matplotlib()

    # Models innermost: every stretch of runs mixes cheap and costly models, so the ETA (mean time per
    # finished run x runs left) is about right after the first round instead of far too low.
    plan = [
        (dataset, model, rate, dims, seed)
        for dataset in args.datasets
        for rate in args.miss_rates
        for dims in args.dims
        for seed in range(args.seeds)
        for model in args.models
    ]
    progress = Progress(len(plan), enabled=not args.quiet)
    results = {}
    start = time.perf_counter()
    for dataset, model, rate, dims, seed in plan:
        used = _columns_used(dims, ncols[dataset])
        label = f"{dataset} {model} {_percent(rate)} d={used} seed {seed}"
        progress.start(label)
        score, seconds = run_one(model, args.overrides[model], tables[dataset], seed, rate, args.protocol, dims, args.round_discrete)
        results.setdefault((model, dataset), []).append(Run(score, seconds, rate, used, seed))
        progress.finish(f"{label}: RMSE {score:.4f} ({seconds:.1f} s)")
    progress.close()
    elapsed = time.perf_counter() - start

    report = format_markdown(args, results, command, elapsed, ncols, paths)
    print(report)
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output, "w") as f:
        f.write(report)
    write_csv(paths["csv"], results)
    for key in ("miss_rate", "dims"):
        if key in paths:
            write_plot(paths[key], args, results, ncols, key)
    print("written to " + ", ".join([output] + list(paths.values())))
    return results


if __name__ == "__main__":
    main()
