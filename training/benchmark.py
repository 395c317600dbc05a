"""Reproduce the papers' imputation tables: a score (mean ± std over seeds) per model and dataset.

The imputers are scored by an imputation error (RMSE by default) and the classifiers of incomplete
inputs by accuracy, each in its own table.

    python -m training.benchmark --models mean,knn,mice,missforest,matrix,em,gain \\
        --datasets spam,letter,credit --miss-rate 0.2 --seeds 5
    python -m training.benchmark --models mean,knn --datasets spam --miss-rates 0.1,0.2,0.3,0.4,0.5 --seeds 3
    python -m training.benchmark --models mean,knn,gain --datasets credit --dims 5,10,15,20,23 --miss-rate 0.2
    python -m training.benchmark --models mean,knn --datasets letter,credit --protocol kfold --seeds 5 \\
        --norm-rows all                                   # EMFlow / MCFlow's "5 folds", Table 1 MCAR
    python -m training.benchmark --models mean,knn --datasets breast --mcar-draw count --miss-rate 0.5 \\
        --metric mse --norm zscore                        # MIWAE's notebooks
    python -m training.benchmark --models mean,knn --datasets letter,credit --mechanism mar --miss-rate emflow
    python -m training.benchmark --models mean,knn --datasets digits --mechanism square
    python -m training.benchmark --models mean,CLASSIFIER --datasets breast --protocol holdout --seeds 5
        # an imputer and a classifier (CLASSIFIER: a name in keraszoo.list_models(task="classify")); accuracy table

Default protocol (GAIN's reference code, which g2lgn.md Table 1 follows): for each seed, remove entries
of the whole table completely at random (MCAR) at the missing rate; fit the imputer on the incomplete
table; impute that same table; RMSE over the removed entries after normalising truth and imputation
with the truth's per-column min and max (`keraszoo.metrics.rmse`). Every switch below keeps that
default when it is not given, so a results file's recorded command reproduces its numbers; every
results file (markdown, CSV, plots) prints the value of every switch.

Switches (see ../shared/notes/reference-implementations.md, section 8, for the papers' conventions):

* `--protocol` -- which rows are fitted and which are scored:
  `transductive` (default; GAIN's code, MIWAE's notebooks): fit on the incomplete table, impute it,
  score every removed entry. `holdout`: one random 80/20 split of the rows from the seed (the first
  80% of a seeded permutation); fit on the 80%, impute the unseen 20% and score their removed entries.
  `kfold`: EMFlow's "five-fold cross-validation", implemented as MCFlow's code does it
  (`util.create_k_fold`, which EMFlow says it follows): the seed shuffles the rows, the shuffled rows
  are cut into 5 folds of int(0.2 n) rows (the last fold takes the remainder) and seed k tests on
  fold k mod 5 and fits on the other four. Because the shuffle also depends on the seed, the five
  "folds" of seeds 0..4 are five different random 80/20 splits, not a partition of the rows; we keep
  that (it is what the published numbers come from). The test fold is never fitted on; it is imputed
  by the fitted model and scored. In every protocol the mask is drawn for the whole table before the
  split (as MCFlow's code), so the same seed removes the same entries under every protocol.
* `--mechanism` -- how entries are removed: `mcar` (default), `mar` (EMFlow supplement eq. 26 through
  `keraszoo.data.missingness.simulate(x, "mar", rate)`: the first floor(0.7 D) columns always
  observed, the rest removed with a probability that depends on them), `mnar` (self-masking, larger
  values more often missing, calibrated to the expected rate), and for image data sets (`digits`,
  `mnist`) the MisConv image masks `square`, `trapezoid` and `noise` (one mask per image, drawn on
  `load_dataset(name).images`). MCAR on an image data set is drawn on its images too (the same draw
  as on its flattened table), so image models get images under MCAR as well (MIWAE's MNIST). Under `mar` and `mnar` the mask is drawn on the columns in use (after
  `--dims`), since it depends on their values; `mcar` draws it for the whole table and cuts it.
* `--mcar-draw` (only with `--mechanism mcar`) -- `bernoulli` (default; GAIN, MCFlow, EMFlow): each
  entry removed independently with probability = the missing rate; `count` (MIWAE's notebooks):
  exactly floor(n * p * rate) entries of the n x p table, chosen uniformly without replacement. With
  `--dims` the count is exact on the whole table, before the cut to the first d columns.
* `--miss-rate R` / `--miss-rates R1,R2,...` -- a number in (0, 1): under `mcar` and `mnar` the
  (expected) fraction of all entries; under `mar` the removal rate of the LAST 30% of the columns
  (the calibrated form of eq. 26), not of all entries; under the image mechanisms the fraction of
  each image removed. Under `mar` two words are accepted too: `eq26` (eq. 26 as written, no target
  rate; the default under `mar`) and `emflow` (EMFlow's Table 4 MAR rate of each data set,
  `keraszoo.data.missingness.emflow_mar_rate`). Defaults: 0.2 for `mcar` and `mnar`; `eq26` for
  `mar`; MisConv's 1/4, 1/2, 3/4 for `square`, `trapezoid`, `noise`.
* `--metric` -- `rmse` (default), `mse` (MIWAE's notebooks, which report the MSE, not its root) or
  `mae`, each pooled over the removed entries of the scored rows (`keraszoo.metrics`).
* `--norm` -- the units: `minmax` (default; per-column min-max, GAIN), `zscore` (per-column mean and
  population std; MIWAE's notebooks standardise the complete data so), `none` (raw values).
* `--norm-source` -- where the scaling statistics come from: `truth` (default; the complete data,
  GAIN's `rmse_loss`, MIWAE's z-score) or `observed` (only the entries left after masking).
* `--norm-rows` -- which rows they come from: `scored` (default; the rows being scored: the whole
  table under `transductive`, the test rows otherwise) or `all` (every row of the table in use,
  fitted and scored: MCFlow / EMFlow min-max the complete table before splitting it). Under
  `transductive` the two are the same. For MIWAE's setting use `--mcar-draw count --metric mse
  --norm zscore` (transductive); for EMFlow's use `--protocol kfold --norm-rows all`.
* `--round-discrete` -- applies the reference code's last step before scoring: every column with
  fewer than 20 distinct observed values (in the rows the imputer was fitted on) has its imputations
  rounded to the nearest integer (`round_discrete_columns`). It is off by default: it is a
  post-processing the GAIN paper does not describe, and it raises RMSE on our tables (see
  benchmarks/results/README.md).
* `--label-feature D1,D2,...` -- those data sets keep their (numeric) label as their last feature
  column, imputed and scored like the others: EMFlow's Wine has 12 columns, the 11 physicochemical
  ones and quality (`--label-feature wine`). A data set whose label is not numeric is an error.
* `--max-rows N` -- use a fixed random subset of N rows of each table (drawn with seed 0, the same
  for every seed, model and switch, kept in file order), for quick runs; default: every row.
* `--seeds S` -- seeds 0..S-1; the seed sets the mask, the split, the model and the shuffling (and,
  before each deep model's fit, `keras.utils.set_random_seed(seed)`, so a model whose layers draw
  their initial weights without a seed of their own repeats exactly too).
  Scores are reported as mean ± sample standard deviation over seeds (ddof = 1), with the number of
  seeds beside it: "0.0528 ± 0.0011 (n=5)" (one seed: "0.0528 (n=1)", no ±).
* `--peers hyperimpute,miceforest` -- imputers outside the zoo, run on the same masks and scored the
  same way, listed as "NAME (peer)": `training/peer_worker.py` runs them in `.venv-peers` (`make
  peers`; HyperImpute needs pandas < 3), a subprocess per run; the results file names their versions.
  Tables under the transductive protocol only (they impute the table they are fitted on). Their fit
  time is their own fit-and-impute call, timed inside the worker.
* `--warm-up` -- before the timed runs, fit each zoo model once, untimed and unscored, on the first
  `WARM_UP_ROWS` rows of the first data set (seed 0, the run's settings), so that what a process pays
  once (TensorFlow's start, imports, thread pools) is not charged to whichever model's fit comes first.
  Off by default (a first fit in a fresh process is what a user waits for); it changes times only,
  never a score.

Images (under an image mechanism, or MCAR on an image data set without --dims): a deep model that takes images (`"image" in
get_model_class(name).example_kinds`) gets them as [N, H, W, 1] arrays (NaN at missing pixels; the
`ZooImputer` / `ZooClassifier` min-max scales them per channel, as `training.train` does). Every other
model -- the classical ones and table-only deep models such as GAIN -- gets one row per image,
[N, H * W] (the pixels flattened in row-major order, as `Dataset.numeric_array` does), scaled per
pixel column as before, so their numbers do not change. (Giving GAIN the 4-D array instead would
NOT give the same score: it would see the same flattened rows, but scaled per channel, one min/max
for every pixel, rather than per pixel.) The imputation comes back in the input's shape and is scored
as rows of H * W pixels; `keraszoo.metrics` flattens N-D examples the same way, so the score is the one
on [N, H, W]. A model that takes images only is refused under mar and mnar, on a table, and with
--dims (there are no images to give it).

Classifiers (`keraszoo.registry.model_task(name) == "classify"`, e.g. MisConv): scored by accuracy,
not by an imputation error. For each run the classifier is fitted by `keraszoo.sklearn.ZooClassifier`
on the fitted rows' incomplete inputs (NaN at the removed entries, the same mask and split as the
imputers of that seed) with the data set's labels (`load_dataset(name).labels`), and scored by
accuracy (`ZooClassifier.score`) on the scored rows' incomplete inputs. Only `holdout` and `kfold`
apply: under `transductive` a classifier would be scored on the rows it was fitted on (a training
accuracy, not comparable with the papers' test accuracies), so a run with a classifier and
`--protocol transductive` (the default) is refused with a one-line error before any run. `--metric`,
`--norm`, `--norm-source`, `--norm-rows` and `--round-discrete` concern imputations and do not apply
to classifiers. Imputers and classifiers can be mixed in one command: the markdown then has one set of
tables for the imputers' metric and a separate set for the classifiers' accuracy (never in one
column); the ± is the sample std over seeds (ddof = 1) with n, as for the imputers.

Variants: `--models g2lgn,g2lgn:wo_lin --set g2lgn:wo_lin.use_lin=False` runs one registered model
under several settings in one command (an ablation table): `NAME:LABEL` is model NAME under its own
`--set NAME:LABEL.PARAM=VALUE` overrides, reported as its own row "NAME:LABEL" on the same masks and
seeds. Paper columns show the paper's number for plain names only.

Sweeps: `--miss-rates 0.1,0.2,...` runs each rate (`--miss-rate R` is the one-rate form) and
`--dims 5,10,...` runs on the first d feature columns of each table, in file order (label excluded).
g2lgn.md Fig. 4 ("RMSE ... on Credit dataset for various dimension numbers") does not say which
columns it keeps, so "the first d" is our choice. Under `mcar` the mask is drawn for the whole table
from the seed and then cut to those columns, so a smaller d scores a subset of the same removed
entries and the curve is not blurred by a fresh mask per d. Every (model, dataset, rate, dims, seed)
is one run.

Outputs, for `--output PATH.md`: PATH.md (markdown with the exact command, machine, versions, protocol
and every switch; also printed), PATH.csv (one row per run: model, dataset, miss_rate, dims, seed, the
imputers' score under the metric's name (rmse, mse or mae; empty for a classifier), `accuracy` (the
classifiers' score; empty for an imputer), fit_seconds, missing_fraction (the fraction of the table's
entries removed), then one column per switch) and, when a sweep has more than one value, PNG plots
beside them: PATH_rmse_vs_missing_rate.png and/or PATH_rmse_vs_dims.png for the imputers ("rmse" is
the metric's name), PATH_accuracy_vs_missing_rate.png and/or PATH_accuracy_vs_dims.png for the
classifiers (one line per model, error bars = sample std over seeds, one panel per dataset, the
switches in the figure's title; needs matplotlib). The default output name gets `_accuracy` when the
run has a classifier. Progress goes to stderr: a live bar on a terminal, a line per finished run
otherwise, nothing with --quiet.
"""
import argparse
import collections
import csv
import datetime
import math
import os
import platform
import re
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
#: emflow.md Table 1 (RMSE, five folds): MCAR 20% (EMFlow and its MCFlow re-run) and MAR at Table 4's rates
#: (EMFlow only). Its Wine has 12 columns (quality included: `--label-feature wine`).
EMFLOW_TABLE_1_MCAR = {
    "emflow": {"letter": "0.1106", "credit": "0.1246", "wine": "0.0757"},
    "mcflow": {"letter": "0.1207", "credit": "0.1347", "wine": "0.0975"},
}
EMFLOW_TABLE_1_MAR = {"emflow": {"letter": "0.1095", "credit": "0.0239", "wine": "0.1020"}}
#: GAIN's reference code rounds the imputations of columns with fewer distinct observed values than this.
DISCRETE_MAX_LEVELS = 20

PROTOCOLS = ("transductive", "holdout", "kfold")
#: `holdout`: the fraction of rows fitted on; `kfold`: the number of folds (MCFlow's fold size int(0.2 n)).
HOLDOUT_TRAIN_FRACTION = 0.8
KFOLD_FOLDS = 5
TABULAR_MECHANISMS = ("mcar", "mar", "mnar")
IMAGE_MECHANISMS = ("square", "trapezoid", "noise")
MCAR_DRAWS = ("bernoulli", "count")
METRICS = ("rmse", "mse", "mae")
NORMS = ("minmax", "zscore", "none")
NORM_SOURCES = ("truth", "observed")
NORM_ROWS = ("scored", "all")
#: Words `--miss-rate` accepts under `--mechanism mar`.
MAR_RATE_WORDS = ("eq26", "emflow")
#: Seed of the row subset of `--max-rows` (fixed: the same rows for every run seed).
SUBSET_SEED = 0

#: The switches, in the order the reports print them: (name in args, flag, default).
SWITCHES = (
    ("protocol", "--protocol", "transductive"),
    ("mechanism", "--mechanism", "mcar"),
    ("mcar_draw", "--mcar-draw", "bernoulli"),
    ("metric", "--metric", "rmse"),
    ("norm", "--norm", "minmax"),
    ("norm_source", "--norm-source", "truth"),
    ("norm_rows", "--norm-rows", "scored"),
    ("round_discrete", "--round-discrete", False),
    ("max_rows", "--max-rows", None),
)

#: `--warm-up` fits each model on this many rows of the first data set before the timed runs.
WARM_UP_ROWS = 500

#: One finished run. `score` (under `--metric`) and `fit_seconds` come first so `run[0]`, `run[1]` read
#: as before sweeps existed; `dims` is the number of columns actually used; `missing_fraction` the
#: fraction of the table's entries (all rows, columns used) that the mask removed.
Run = collections.namedtuple("Run", "score fit_seconds miss_rate dims seed missing_fraction")
CSV_RUN_COLUMNS = ("model", "dataset", "miss_rate", "dims", "seed")
PLOT_SUFFIXES = {"miss_rate": "_rmse_vs_missing_rate.png", "dims": "_rmse_vs_dims.png"}
#: The plots a sweep can write: path key -> (swept quantity, whether it plots the classifiers' accuracy).
PLOT_KEYS = {"miss_rate": ("miss_rate", False), "dims": ("dims", False), "accuracy_miss_rate": ("miss_rate", True), "accuracy_dims": ("dims", True)}
METRIC_NAMES = {"rmse": "RMSE", "mse": "MSE", "mae": "MAE"}


def csv_columns(metric="rmse"):
    """The CSV header: the run's coordinates, the imputers' score (named after the metric), the
    classifiers' `accuracy` (each empty for the other task), then every switch."""
    return CSV_RUN_COLUMNS + (metric, "accuracy", "fit_seconds", "missing_fraction") + tuple(name for name, _, _ in SWITCHES)


def build_parser(prog="python -m training.benchmark"):
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        epilog="Every switch is described in the module docstring (python -c 'import training.benchmark as b; help(b)').",
    )
    parser.add_argument(
        "--models", default="mean,knn,mice,missforest,matrix,em,gain",
        help="comma-separated registered model names: imputers (scored by --metric) and/or classifiers (scored by accuracy); "
        "NAME:LABEL is a variant of NAME with its own --set NAME:LABEL.PARAM=VALUE (ablations)",
    )
    parser.add_argument("--datasets", default="spam,letter,credit", help="comma-separated dataset names")
    rates = parser.add_mutually_exclusive_group()
    rates.add_argument(
        "--miss-rate", default=None,
        help="missing rate in (0, 1) (default 0.2; under --mechanism mar: the rate of the last 30%% of columns, or eq26 "
        "(default) or emflow; image mechanisms: the fraction of each image, default MisConv's)",
    )
    rates.add_argument("--miss-rates", default=None, metavar="R1,R2,...", help="sweep: comma-separated missing rates, as --miss-rate")
    parser.add_argument(
        "--dims", default=None, metavar="D1,D2,...", help="sweep: use the first d feature columns of each table (default: all columns)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0 .. seeds-1) (default 5)")
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default="transductive",
        help="transductive: fit on the incomplete table and impute it (GAIN's code); holdout: fit on 80%% of the rows, score the "
        "other 20%%; kfold: EMFlow/MCFlow's 5 folds (seed k tests on fold k mod 5 of a seeded shuffle); classifiers need holdout "
        "or kfold (default transductive)",
    )
    parser.add_argument(
        "--mechanism", choices=TABULAR_MECHANISMS + IMAGE_MECHANISMS, default="mcar",
        help="missingness: mcar, mar (EMFlow eq. 26), mnar (self-masking); square, trapezoid, noise for image data sets (default mcar)",
    )
    parser.add_argument(
        "--mcar-draw", choices=MCAR_DRAWS, default="bernoulli",
        help="MCAR: bernoulli (each entry with probability rate) or count (exactly floor(n*p*rate) entries, MIWAE) (default bernoulli)",
    )
    parser.add_argument("--metric", choices=METRICS, default="rmse", help="score over the removed entries (default rmse)")
    parser.add_argument("--norm", choices=NORMS, default="minmax", help="units of the score: per-column min-max, z-score or raw (default minmax)")
    parser.add_argument(
        "--norm-source", choices=NORM_SOURCES, default="truth",
        help="scaling statistics from the complete data (truth) or its observed entries only (default truth)",
    )
    parser.add_argument(
        "--norm-rows", choices=NORM_ROWS, default="scored",
        help="scaling statistics from the scored rows or from every row of the table (default scored)",
    )
    parser.add_argument(
        "--label-feature", default="", metavar="D1,D2,...",
        help="data sets whose numeric label joins their features as the last column (EMFlow's 12-column Wine: --label-feature wine)",
    )
    parser.add_argument("--max-rows", type=int, default=None, metavar="N", help="use a fixed random subset of N rows of each table (default: all)")
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
    parser.add_argument(
        "--peers", default="", metavar="P1,P2",
        help="peer imputers outside the zoo, run on the same masks by training/peer_worker.py in .venv-peers (make peers): "
        "hyperimpute, miceforest; tables under the transductive protocol only (listed as 'NAME (peer)')",
    )
    parser.add_argument(
        "--warm-up", action="store_true",
        help=f"fit each zoo model once, untimed, on the first {WARM_UP_ROWS} rows of the first data set before the timed runs "
        "(the process's one-time costs then fall on no model's fit time)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    parser.add_argument(
        "--note", action="append", default=[], metavar="TEXT", help="add a sentence to the report's protocol section (e.g. a reduction from the paper's protocol)"
    )
    return parser


def parse_args(argv=None, prog="python -m training.benchmark"):
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    import keraszoo
    from keraszoo.data import list_datasets

    args.models = _unique(m.strip() for m in args.models.split(",") if m.strip())
    args.datasets = _unique(d.strip() for d in args.datasets.split(",") if d.strip())
    if not args.models or not args.datasets:
        parser.error(f"--models and --datasets need at least one name; registered models: {', '.join(keraszoo.list_models())}; "
                     f"datasets: {', '.join(list_datasets())}")
    for name in args.models:
        base, colon, label = name.partition(":")
        if base not in keraszoo.list_models():
            parser.error(f"unknown model {base!r}; registered models: {', '.join(keraszoo.list_models())}")
        if colon and not re.fullmatch(r"[A-Za-z0-9_-]+", label):
            parser.error(f"a variant is NAME:LABEL with LABEL of letters, digits, '_' or '-', got {name!r}")
    for name in args.datasets:
        if name not in list_datasets():
            parser.error(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")

    if args.mcar_draw != "bernoulli" and args.mechanism != "mcar":
        parser.error(f"--mcar-draw {args.mcar_draw} applies to --mechanism mcar only, not {args.mechanism}")
    args.miss_rates = _parse_rates(parser, args)
    args.miss_rate = args.miss_rates[0]  # the one-rate form, for titles and the default file name

    if args.dims is not None:
        if args.mechanism in IMAGE_MECHANISMS:
            parser.error(f"--dims does not apply to image masks (--mechanism {args.mechanism}): an image keeps all its pixels")
        args.dims = _parse_list(parser, "--dims", args.dims, int, "whole numbers")
        for d in args.dims:
            if d < 1:
                parser.error(f"--dims must each be at least 1, got {d}")
    else:
        args.dims = [None]  # every column
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.max_rows is not None and args.max_rows < 10:
        parser.error(f"--max-rows must be at least 10, got {args.max_rows}")
    args.label_feature = [d for d in args.label_feature.split(",") if d] if isinstance(args.label_feature, str) else list(args.label_feature)
    for d in args.label_feature:
        if d not in args.datasets:
            parser.error(f"--label-feature {d}: not one of --datasets ({', '.join(args.datasets)})")
    args.overrides = parse_overrides(parser, args.set, args.models)
    _check_model_kinds(parser, args)
    _add_peers(parser, args)
    return args


def _add_peers(parser, args):
    """Append the --peers to the models as 'NAME (peer)'; `args.peer_models` maps each to its method."""
    peers = _unique(p.strip() for p in (args.peers or "").split(",") if p.strip())
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; available: {', '.join(PEERS)}")
    if peers and (args.protocol != "transductive" or args.mechanism in IMAGE_MECHANISMS):
        parser.error("--peers run on tables under the transductive protocol only (they impute the table they are fitted on)")
    if peers and not os.path.exists(peers_python()):
        parser.error(f"--peers needs the peers' environment: {peers_python()} is missing (run `make peers`, or set KERASZOO_PEERS_PYTHON)")
    args.peer_models = {f"{p} (peer)": p for p in peers}
    args.models = args.models + list(args.peer_models)
    for label in args.peer_models:
        args.overrides[label] = {}


def _check_model_kinds(parser, args):
    """Set `args.classifiers` (the classifiers among --models, in order) and refuse what cannot run:
    a classifier under the transductive protocol, an image-only model without images."""
    from keraszoo.registry import model_task

    args.classifiers = [m for m in args.models if model_task(registered_name(m)) == "classify"]
    if args.classifiers and args.protocol == "transductive":
        parser.error(
            f"--protocol transductive would score classifier(s) {', '.join(args.classifiers)} on the rows they were fitted on "
            "(a training accuracy); use --protocol holdout or kfold"
        )
    if args.mechanism not in IMAGE_MECHANISMS and args.mechanism != "mcar":
        for name in image_only_models(args):
            parser.error(
                f"model {name!r} takes images only; under --mechanism {args.mechanism} the data are tables: use mcar or an image "
                f"mechanism ({', '.join(IMAGE_MECHANISMS)}) on an image data set (digits, mnist)"
            )


def image_only_models(args):
    """The deep models among --models that take images and no tables."""
    from keraszoo.registry import get_model_class, is_deep

    zoo = [m for m in args.models if m not in getattr(args, "peer_models", {})]
    return [m for m in zoo if is_deep(registered_name(m)) and "table" not in get_model_class(registered_name(m)).example_kinds]


def registered_name(model):
    """The registered model behind a --models entry: NAME for both NAME and a variant NAME:LABEL."""
    return model.partition(":")[0]


def imputers_of(args):
    """The imputers among --models, in order (everything that is not a classifier)."""
    classifiers = getattr(args, "classifiers", [])
    return [m for m in args.models if m not in classifiers]


def _rate_value(text):
    text = text.strip()
    return text.lower() if text.lower() in MAR_RATE_WORDS else float(text)


def _parse_rates(parser, args):
    """The missing rates: floats in (0, 1), or under `mar` the words eq26 / emflow."""
    flag = "--miss-rates" if args.miss_rates is not None else "--miss-rate"
    text = args.miss_rates if args.miss_rates is not None else args.miss_rate
    if text is None:  # the mechanism's default
        if args.mechanism == "mar":
            return ["eq26"]
        if args.mechanism in IMAGE_MECHANISMS:
            from keraszoo.data.missingness import IMAGE_DEFAULT_RATES

            return [IMAGE_DEFAULT_RATES[args.mechanism]]
        return [PAPER_MISS_RATE]
    try:
        rates = _unique(_rate_value(item) for item in text.split(",") if item.strip())
    except ValueError:
        extra = " (or the words eq26, emflow under --mechanism mar)" if args.mechanism == "mar" else ""
        parser.error(f"{flag} expects comma-separated numbers{extra}, e.g. {flag} 0.1,0.2,0.3; got {text!r}")
    if not rates:
        parser.error(f"{flag} needs at least one value")
    if flag == "--miss-rate" and len(rates) > 1:
        parser.error(f"--miss-rate takes one value; use --miss-rates for a sweep, got {text!r}")
    what = "--miss-rates must each be" if flag == "--miss-rates" else "--miss-rate must be"
    for rate in rates:
        if isinstance(rate, str):
            if args.mechanism != "mar":
                parser.error(f"{flag} {rate} applies to --mechanism mar only (EMFlow's MAR), not {args.mechanism}")
            if rate == "emflow":
                from keraszoo.data import missingness

                for name in args.datasets:
                    try:
                        missingness.emflow_mar_rate(name)
                    except ValueError as err:
                        parser.error(f"{flag} emflow: {err}")
        elif not 0.0 < rate < 1.0:
            parser.error(f"{what} in (0, 1), got {rate:g}")
    return rates


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


def parse_overrides(parser, items, models, among="--models"):
    """{model: {param: value}} from `--set MODEL.PARAM=VALUE` items (values read as Python literals when
    they parse, else kept as strings); a MODEL not in `models` is a usage error naming `among`."""
    import ast

    overrides = {m: {} for m in models}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, param = key.partition(".")
        if not sep or not dot or model not in overrides:
            parser.error(f"--set expects MODEL.PARAM=VALUE with MODEL among {among}, got {item!r}")
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


def load_tables(args):
    """dataset -> complete float64 array: [rows, columns] tables, or [N, H, W] images under an image
    mechanism; `--max-rows` subsets applied. Raises SystemExit (a parser error) for a data set without
    images under an image mechanism."""
    return load_data(args)[0]


def load_data(args):
    """(tables, labels): the tables as `load_tables`, and dataset -> its labels (one per row, the same
    `--max-rows` subset) when --models has a classifier, else {}. Raises SystemExit (a parser error) for
    a data set without images under an image mechanism, or without labels when a classifier runs."""
    from keraszoo.data import load_dataset

    tables, labels = {}, {}
    for name in args.datasets:
        dataset = load_dataset(name, data_dir=args.data_dir)
        if args.mechanism in IMAGE_MECHANISMS:
            if dataset.images is None:
                build_parser().error(
                    f"--mechanism {args.mechanism} needs image data sets; {name!r} has no images (image data sets: digits, mnist)"
                )
            table = np.asarray(dataset.images, dtype=np.float64)
        elif args.mechanism == "mcar" and dataset.images is not None and args.dims in (None, [None]):
            # MCAR on an image data set (MIWAE's MNIST): the images, so image models get them; the same
            # Bernoulli or count draw as on the flattened table, so every other model's numbers are unchanged.
            table = np.asarray(dataset.images, dtype=np.float64)
        else:
            if image_only_models(args):
                build_parser().error(
                    f"model(s) {', '.join(image_only_models(args))} take images only; {name!r} under --mechanism {args.mechanism}"
                    + (" with --dims" if args.dims not in (None, [None]) else "") + " gives a table"
                )
            table = dataset.numeric_array()
            if name in getattr(args, "label_feature", []):
                table = with_label_column(table, dataset.labels, name)
        tables[name] = subset_rows(table, args.max_rows)
        if getattr(args, "classifiers", []):
            if dataset.labels is None:
                build_parser().error(f"classifier(s) {', '.join(args.classifiers)} need labels; data set {name!r} has none")
            labels[name] = subset_rows(np.asarray(dataset.labels), args.max_rows)
    return tables, labels


def with_label_column(table, labels, name):
    """`table` with the data set's numeric label appended as its last column (`--label-feature`)."""
    import pandas as pd

    if labels is None or not pd.api.types.is_numeric_dtype(labels):
        build_parser().error(f"--label-feature {name}: its label is not numeric ({'none' if labels is None else labels.dtype}), so it cannot be a feature")
    return np.column_stack([table, np.asarray(labels, dtype=np.float64)])


def subset_rows(table, max_rows):
    """`table` itself, or a fixed random subset of `max_rows` rows (seed SUBSET_SEED), in file order."""
    if max_rows is None or max_rows >= len(table):
        return table
    rows = np.sort(np.random.default_rng(SUBSET_SEED).permutation(len(table))[:max_rows])
    return table[rows]


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


# --------------------------------------------------------------------------------------------------
# masks, splits and one run
def mcar_count_mask(shape, rate, seed):
    """MIWAE's MCAR: exactly floor(size * rate) entries of an array of `shape` removed, chosen uniformly
    without replacement (size = the number of entries, n * p for a table); 1 = observed."""
    size = int(np.prod(shape))
    mask = np.ones(size, dtype=np.float32)
    mask[np.random.default_rng(seed).choice(size, size=int(math.floor(size * rate)), replace=False)] = 0.0
    return mask.reshape(shape)


def resolve_rate(rate, mechanism, dataset):
    """The `rate` argument of `keraszoo.data.missingness.simulate` for a rate of `--miss-rate(s)`."""
    if rate == "eq26":
        return None
    if rate == "emflow":
        from keraszoo.data.missingness import emflow_mar_rate

        return emflow_mar_rate(dataset)
    return rate


def draw_mask(table, seed, rate, mechanism="mcar", mcar_draw="bernoulli", dims=None, dataset=None):
    """The mask (1 observed, 0 missing) of one run, with the shape of `table[:, :dims]` (images: of `table`).

    `mcar` is drawn for the whole table and cut to the first `dims` columns (so runs that differ only in
    `dims` share their removed entries); `mar` and `mnar` depend on the values and are drawn on the
    columns used; image mechanisms on the images [N, H, W]."""
    from keraszoo.data.missingness import mcar_mask, simulate

    if mechanism == "mcar":
        full = mcar_count_mask(table.shape, rate, seed) if mcar_draw == "count" else mcar_mask(table.shape, rate, seed=seed)
        return full[:, :dims]
    if mechanism in IMAGE_MECHANISMS:
        return simulate(table, mechanism, rate=rate, seed=seed)
    return simulate(table[:, :dims], mechanism, rate=resolve_rate(rate, mechanism, dataset), seed=seed)


def split_rows(n, seed, protocol):
    """(fitted rows, scored rows) of one run: index arrays, or slice(None) for every row (transductive)."""
    if protocol == "transductive":
        return slice(None), slice(None)
    order = np.random.default_rng(seed).permutation(n)
    if protocol == "holdout":
        cut = int(HOLDOUT_TRAIN_FRACTION * n)
        return order[:cut], order[cut:]
    if protocol == "kfold":  # MCFlow's util.create_k_fold on rows shuffled by the seed
        size = int(n / KFOLD_FOLDS)
        k = seed % KFOLD_FOLDS
        stop = n if k == KFOLD_FOLDS - 1 else (k + 1) * size
        return np.concatenate([order[: k * size], order[stop:]]), order[k * size : stop]
    raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")


def settings_of(args):
    """{switch name: value} of every switch (SWITCHES), from parsed arguments (missing ones: defaults)."""
    return {name: getattr(args, name, default) for name, _, default in SWITCHES}


def takes_images(model):
    """Whether the runner gives `model` images [N, H, W, 1] under an image mechanism: a deep model whose
    `example_kinds` include "image". Every other model gets one row of H * W pixels per image."""
    from keraszoo.registry import get_model_class, is_deep

    return is_deep(model) and "image" in get_model_class(model).example_kinds


def _prepare_run(model, params, truth, seed, miss_rate, s, dims, dataset):
    """What one run of either task needs: (truth rows, mask rows, the model's incomplete input, the
    model's parameters, fitted rows, scored rows). Truth and mask are [N, D] (images: [N, H * W]); the
    model's input is [N, D] too, or [N, H, W, 1] (NaN at missing pixels) for a model that takes images."""
    mask = draw_mask(truth, seed, miss_rate, s["mechanism"], s["mcar_draw"], dims, dataset)
    truth = truth[:, :dims] if truth.ndim == 2 else truth
    n = len(truth)
    image_input = truth.ndim == 3 and takes_images(model)
    if image_input:  # [N, H, W] -> [N, H, W, 1]: the model's image examples, one channel
        model_input = np.where(mask == 1, truth, np.nan)[..., None]
    # Scored (and, for every other model, imputed) as one row per example: images [N, H, W] become [N, H * W].
    truth, mask = truth.reshape(n, -1), mask.reshape(n, -1)
    if not image_input:
        model_input = np.where(mask == 1, truth, np.nan)
    params = seeded_params(model, params, seed)
    fit_rows, scored_rows = split_rows(n, seed, s["protocol"])
    return truth, mask, model_input, params, fit_rows, scored_rows


def seeded_params(model, params, seed):
    """A copy of `params` with the run's seed as the model's `seed` (or `random_state`), unless given."""
    from keraszoo.registry import model_parameters

    params = dict(params)
    if "seed" in model_parameters(model):
        params.setdefault("seed", seed)
    elif "random_state" in model_parameters(model):
        params.setdefault("random_state", seed)
    return params


def seed_deep_model(model, seed):
    """Before a deep model is built and fitted: `keras.utils.set_random_seed(seed)` (Python, NumPy,
    TensorFlow and Keras's global generator), so a model whose layers draw their initial weights without
    a seed of their own still repeats exactly for a seed, whatever ran before it in the process. The
    zoo's models seed their own initializers and random ops, so their numbers do not change."""
    from keraszoo.registry import is_deep

    if is_deep(model):
        import keras

        keras.utils.set_random_seed(int(seed))


def _settings(settings):
    s = {name: default for name, _, default in SWITCHES}
    s.update(settings or {})
    return s


def warm_up(args, table, labels, settings, dataset, quiet=False):
    """`--warm-up`: fit each zoo model (not the peers, which run in their own processes) once on the
    first `WARM_UP_ROWS` rows of `table`, untimed and unscored."""
    rows = slice(0, WARM_UP_ROWS)
    rate = args.miss_rates[0]
    for model in args.models:
        if model in args.peer_models:
            continue
        begun = time.perf_counter()
        if model in args.classifiers:
            run_classifier(registered_name(model), args.overrides[model], table[rows], labels[rows], 0, rate, settings, None, dataset)
        else:
            run_one(registered_name(model), args.overrides[model], table[rows], 0, rate, settings, None, dataset)
        if not quiet:
            print(f"warm-up: {model} on {min(WARM_UP_ROWS, len(table))} rows of {dataset} ({time.perf_counter() - begun:.1f} s, not counted)", file=sys.stderr)


def run_one(model, params, truth, seed, miss_rate, settings=None, dims=None, dataset=None, callbacks=None):
    """Fit and score one (imputer, dataset, rate, dims, seed); returns (score, fit seconds, missing fraction).

    `truth`: the complete table [rows, columns], or images [N, H, W] under an image mechanism (given to
    a model that takes images as [N, H, W, 1], to any other as [N, H * W]; see `takes_images`).
    `settings`: {switch: value} (`settings_of`); missing switches take their defaults. `dims`: use only
    the first `dims` columns (None: all). `dataset`: its name (for `--miss-rate emflow`).
    Classifiers: `run_classifier`. `callbacks`: Keras callbacks for a deep model's training (progress).
    """
    from keraszoo.sklearn import ZooImputer

    s = _settings(settings)
    truth, mask, model_input, params, fit_rows, scored_rows = _prepare_run(model, params, truth, seed, miss_rate, s, dims, dataset)
    imputer = ZooImputer(model, **params)
    seed_deep_model(model, seed)
    start = time.perf_counter()
    if s["protocol"] == "transductive":
        imputed = imputer.fit(model_input, callbacks=callbacks).transform(model_input)  # fit time includes the imputation, as before
        seconds = time.perf_counter() - start
    else:
        imputer.fit(model_input[fit_rows], callbacks=callbacks)
        seconds = time.perf_counter() - start
        imputed = imputer.transform(model_input[scored_rows])
    return score_imputation(truth, mask, imputed, fit_rows, scored_rows, s), seconds, float(1.0 - mask.mean(dtype=np.float64))


def score_imputation(truth, mask, imputed, fit_rows, scored_rows, s):
    """The run's score (`s["metric"]`) of `imputed` (the scored rows) against `truth` on the removed entries."""
    from keraszoo import metrics

    imputed = np.asarray(imputed).reshape(len(imputed), -1)  # images [rows, H, W, 1] back to rows of pixels
    incomplete = np.where(mask == 1, truth, np.nan)
    if s["round_discrete"]:
        imputed = round_discrete_columns(imputed, incomplete[scored_rows], incomplete[fit_rows])
    statistics = None
    if s["norm"] != "none":
        rows = scored_rows if s["norm_rows"] == "scored" else slice(None)
        statistics = metrics.scaling_statistics(truth[rows], mask[rows], normalize=s["norm"], source=s["norm_source"])
    score_fn = {"rmse": metrics.rmse, "mse": metrics.mse, "mae": metrics.mae}[s["metric"]]
    return score_fn(truth[scored_rows], imputed, mask[scored_rows], normalize=s["norm"], statistics=statistics)


def run_peer(method, truth, seed, miss_rate, settings=None, dims=None, dataset=None, python=None):
    """Fit and score a peer imputer (`training/peer_worker.py`, run by the peers' environment's `python`)
    on the same mask as the zoo's models; returns (score, the peer's own seconds, missing fraction).
    Transductive only: the peers impute the table they are fitted on."""
    import json
    import subprocess
    import tempfile

    s = _settings(settings)
    truth, mask, model_input, _, fit_rows, scored_rows = _prepare_run("mean", {}, truth, seed, miss_rate, s, dims, dataset)
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_worker.py")
    with tempfile.TemporaryDirectory() as tmp:
        source, target = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(source, x=model_input)
        done = subprocess.run([python or peers_python(), worker, method, source, target, str(int(seed))], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"peer {method} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
        with np.load(target) as out:
            imputed, seconds, versions = out["imputed"], float(out["seconds"]), json.loads(str(out["versions"]))
    PEER_VERSIONS.update(versions)
    return score_imputation(truth, mask, imputed, fit_rows, scored_rows, s), seconds, float(1.0 - mask.mean(dtype=np.float64))


#: package versions the peers reported in this process (for the results file)
PEER_VERSIONS = {}
PEERS = ("hyperimpute", "miceforest")


def peers_python():
    """The peers' interpreter: $KERASZOO_PEERS_PYTHON, else `.venv-peers/bin/python` (`make peers`)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("KERASZOO_PEERS_PYTHON") or os.path.join(root, ".venv-peers", "bin", "python")


def run_classifier(model, params, truth, labels, seed, miss_rate, settings=None, dims=None, dataset=None):
    """Fit and score one (classifier, dataset, rate, dims, seed); returns (accuracy, fit seconds, missing fraction).

    The same mask, split and inputs as `run_one` for that seed: `ZooClassifier(model, **params)` is fitted
    on the fitted rows' incomplete inputs (NaN at the removed entries) with their `labels`, and scored by
    accuracy on the scored rows' incomplete inputs. The protocol must be holdout or kfold (under
    transductive the scored rows would be the fitted ones; `parse_args` refuses that).
    """
    from keraszoo.sklearn import ZooClassifier

    s = _settings(settings)
    if s["protocol"] == "transductive":
        raise ValueError("a classifier is scored on rows it was not fitted on: use protocol holdout or kfold, not transductive")
    labels = np.asarray(labels)
    truth, mask, model_input, params, fit_rows, scored_rows = _prepare_run(model, params, truth, seed, miss_rate, s, dims, dataset)
    if len(labels) != len(truth):
        raise ValueError(f"{len(labels)} labels for {len(truth)} rows")
    classifier = ZooClassifier(model, **params)
    seed_deep_model(model, seed)
    start = time.perf_counter()
    classifier.fit(model_input[fit_rows], labels[fit_rows])
    seconds = time.perf_counter() - start
    accuracy = float(classifier.score(model_input[scored_rows], labels[scored_rows]))
    return accuracy, seconds, float(1.0 - mask.mean(dtype=np.float64))


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

    def training_callback(self, label):
        """A Keras callback that redraws the bar (terminal only) with a deep model's step count and current
        losses while it trains: "... | spam gain 20% seed 0 | step 1500/10000 d_loss 0.41 g_loss 1.93"."""
        import keras

        progress = self

        class RunProgress(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.total = (self.params.get("steps") or 0) * (self.params.get("epochs") or 1)
                self.epoch_offset = 0

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch_offset = epoch * (self.params.get("steps") or 0)

            def on_train_batch_end(self, batch, logs=None):
                losses = " ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items() if "loss" in k or k in ("bound", "mse"))
                progress.start(f"{label} | step {self.epoch_offset + batch + 1}/{self.total} {losses}".rstrip())

        return RunProgress() if self.live else None

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


def _rate_label(rate):
    """A missing rate for tables and progress: '20%', or the MAR words 'eq. 26' and 'EMFlow Table 4'."""
    if rate == "eq26":
        return "eq. 26"
    if rate == "emflow":
        return "EMFlow Table 4"
    return _percent(rate)


def _group(results):
    """(model, dataset, miss_rate, dims) -> list of Runs over seeds."""
    groups = {}
    for (model, dataset), runs in results.items():
        for run in runs:
            groups.setdefault((model, dataset, run.miss_rate, run.dims), []).append(run)
    return groups


def _columns_used(dims, ncols):
    return ncols if dims is None else dims


def sample_std(scores):
    """Sample standard deviation (ddof = 1); 0.0 for a single score (no spread to estimate)."""
    return float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0


def _mean_std(runs):
    """'mean ± sample std (n=seeds)', e.g. '0.0528 ± 0.0011 (n=5)'; one run: '0.0528 (n=1)'; none (a
    peer that failed): 'failed'."""
    scores = [r.score for r in runs]
    if not scores:
        return "failed"
    if len(scores) == 1:
        return f"{scores[0]:.4f} (n=1)"
    return f"{np.mean(scores):.4f} ± {sample_std(scores):.4f} (n={len(scores)})"


def sidecar_paths(output, args):
    """The CSV and PNG files written beside the markdown `output`."""
    stem = os.path.splitext(output)[0]
    paths = {"csv": stem + ".csv"}
    metric = getattr(args, "metric", "rmse")
    tasks = {False: bool(imputers_of(args)), True: bool(getattr(args, "classifiers", []))}
    for key, (x_key, classify) in PLOT_KEYS.items():
        swept = len(args.miss_rates) > 1 if x_key == "miss_rate" else len(args.dims) > 1
        if swept and tasks[classify]:
            paths[key] = stem + PLOT_SUFFIXES[x_key].replace("rmse", "accuracy" if classify else metric)
    return paths


def _paper_units(args):
    """g2lgn.md Table 1's kind of score: Bernoulli MCAR on full tables, RMSE on the truth's min-max."""
    s = settings_of(args)
    return (
        s["mechanism"] == "mcar" and s["mcar_draw"] == "bernoulli" and s["metric"] == "rmse" and s["norm"] == "minmax"
        and s["norm_source"] == "truth" and s["max_rows"] is None
    )


def paper_reference(args):
    """(published numbers {model: {dataset: text}}, where from) for a single-rate run in a paper's
    setting, or None: g2lgn.md Table 1 (transductive, 20% Bernoulli MCAR) or emflow.md Table 1 (five
    folds, min-max over every row; 20% MCAR, or MAR at Table 4's rates)."""
    if args.dims != [None] or len(args.miss_rates) != 1:
        return None
    s = settings_of(args)
    if args.protocol == "transductive":
        return (PAPER_TABLE_1, "g2lgn.md Table 1") if _paper_comparable(args) else None
    if args.protocol != "kfold" or s["norm_rows"] != "all" or s["max_rows"] is not None or s["metric"] != "rmse" or s["norm"] != "minmax":
        return None
    if s["mechanism"] == "mcar" and s["mcar_draw"] == "bernoulli" and args.miss_rate == PAPER_MISS_RATE:
        table = EMFLOW_TABLE_1_MCAR
    elif s["mechanism"] == "mar" and args.miss_rate == "emflow":
        table = EMFLOW_TABLE_1_MAR
    else:
        return None
    # emflow.md's Wine is the 12-column table: with 11 columns the numbers are not comparable
    wine_ok = "wine" in getattr(args, "label_feature", [])
    table = {m: {d: v for d, v in cells.items() if d != "wine" or wine_ok} for m, cells in table.items()}
    return table, "emflow.md Table 1"


def _paper_comparable(args):
    """g2lgn.md Table 1's setting: 20% Bernoulli MCAR on every column, RMSE on the truth's min-max."""
    return args.miss_rate == PAPER_MISS_RATE and args.dims == [None] and _paper_units(args)


def _switch_value(args, name, default):
    value = getattr(args, name, default)
    if name == "round_discrete":
        return "on" if value else "off"
    if name == "max_rows":
        return "all rows" if value is None else str(value)
    return str(value)


def settings_summary(args):
    """One line with every switch, e.g. for a plot's title: 'protocol=transductive, mechanism=mcar, ...'."""
    rates = ",".join(str(r) for r in args.miss_rates)
    parts = [f"{flag[2:]}={_switch_value(args, name, default)}" for name, flag, default in SWITCHES]
    return ", ".join(parts[:3] + [f"miss-rate={rates}"] + parts[3:] + [f"seeds={args.seeds}"])


def _rate_meaning(args):
    m = getattr(args, "mechanism", "mcar")
    if m == "mar":
        words = [r for r in args.miss_rates if isinstance(r, str)]
        text = "under MAR a number is the removal rate of the last 30% of the columns (calibrated eq. 26), not of all entries"
        if "eq26" in words:
            text += "; eq26 is eq. 26 as written (no target rate: every removal probability >= 0.5 on min-max data)"
        if "emflow" in words:
            from keraszoo.data.missingness import emflow_mar_rate

            text += "; emflow is EMFlow's Table 4 rate of each data set (" + ", ".join(
                f"{d} {emflow_mar_rate(d):g}" for d in args.datasets) + ")"
        return text
    if m in IMAGE_MECHANISMS:
        return "the fraction of each image removed"
    if m == "mnar":
        return "the expected fraction of all entries removed"
    if getattr(args, "mcar_draw", "bernoulli") == "count":
        return "exactly floor(n * p * rate) entries of the n x p table removed"
    return "each entry removed with this probability"


SWITCH_TEXT = {
    ("protocol", "transductive"): "fit on the incomplete table, impute it, score every removed entry (GAIN's code)",
    ("protocol", "holdout"): "fit on a random 80% of the rows (from the seed), impute the other 20% (never fitted on), score their removed entries",
    ("protocol", "kfold"): (
        "EMFlow's 5 folds as MCFlow's code: the seed shuffles the rows, seed k tests on fold k mod 5 (int(0.2 n) rows, the last "
        "fold takes the remainder) and fits on the rest; the test fold is never fitted on. The shuffle depends on the seed, so "
        "the folds of different seeds are different random 80/20 splits, not a partition"
    ),
    ("mechanism", "mcar"): "missing completely at random over the whole table",
    ("mechanism", "mar"): "EMFlow supplement eq. 26 (`simulate(x, 'mar', rate)`): the first floor(0.7 D) columns always observed, the others removed with a probability depending on them",
    ("mechanism", "mnar"): "self-masking (`simulate(x, 'mnar', rate)`): larger values more often missing, calibrated to the expected rate",
    ("mechanism", "square"): "MisConv's square: one random block of a quarter of each image (by default)",
    ("mechanism", "trapezoid"): "MisConv's trapezoid: one random trapezoid covering half of each image (by default)",
    ("mechanism", "noise"): "MisConv's noise: exactly round(rate H W) random pixels removed per image",
    ("mcar_draw", "bernoulli"): "each entry independently (GAIN, MCFlow, EMFlow)",
    ("mcar_draw", "count"): "exactly floor(n * p * rate) entries chosen uniformly without replacement (MIWAE's notebooks)",
    ("metric", "rmse"): "root mean squared error over the removed entries of the scored rows",
    ("metric", "mse"): "mean squared error (no root; MIWAE's notebooks) over the removed entries of the scored rows",
    ("metric", "mae"): "mean absolute error over the removed entries of the scored rows",
    ("norm", "minmax"): "per-column min-max units (GAIN)",
    ("norm", "zscore"): "per-column z-score units: (v - mean) / population std (MIWAE's notebooks)",
    ("norm", "none"): "raw units",
    ("norm_source", "truth"): "scaling statistics from the complete data (GAIN's rmse_loss, MIWAE's z-score)",
    ("norm_source", "observed"): "scaling statistics from the observed entries only",
    ("norm_rows", "scored"): "scaling statistics from the scored rows",
    ("norm_rows", "all"): "scaling statistics from every row of the table in use, fitted and scored (MCFlow / EMFlow scale the complete table before splitting)",
}


def settings_lines(args, ncols=None):
    """The report's "Settings" list: every switch with its value and meaning, default or not."""
    ncols = ncols or {}
    s = settings_of(args)
    lines = ["Settings (every switch; see `python -m training.benchmark --help` and the module docstring):", ""]
    for name, flag, default in SWITCHES:
        value = s[name]
        if name == "mcar_draw" and s["mechanism"] != "mcar":
            lines.append(f"- `{flag} {value}`: not used (--mechanism {s['mechanism']}).")
        elif name == "norm_source" and s["norm"] == "none":
            lines.append(f"- `{flag} {value}`: not used (--norm none).")
        elif name == "norm_rows" and s["norm"] == "none":
            lines.append(f"- `{flag} {value}`: not used (--norm none).")
        elif name == "norm_rows" and s["protocol"] == "transductive":
            lines.append(f"- `{flag} {value}`: the same as `all` under the transductive protocol (every row is scored).")
        elif name == "round_discrete":
            lines.append(
                f"- `{flag}`: "
                + (f"on (imputations of columns with fewer than {DISCRETE_MAX_LEVELS} distinct observed values are rounded)." if value
                   else "off (imputations are scored as they are).")
            )
        elif name == "max_rows":
            lines.append(
                f"- `{flag}`: " + ("all rows." if value is None else
                                   f"{value} (a fixed random subset of each table's rows, drawn with seed {SUBSET_SEED}, the same for every run).")
            )
        else:
            lines.append(f"- `{flag} {value}`: {SWITCH_TEXT[(name, value)]}.")
        if name == "mcar_draw":
            rates = ", ".join(_rate_label(r) for r in args.miss_rates)
            lines.append(f"- `--miss-rate{'s' if len(args.miss_rates) > 1 else ''} {','.join(str(r) for r in args.miss_rates)}` ({rates}): {_rate_meaning(args)}.")
    lines.append(
        f"- `--seeds {args.seeds}`: seeds 0..{args.seeds - 1}; ± is the sample standard deviation over the seeds (ddof = 1), "
        "with the number of seeds beside it as (n=...)."
    )
    classifiers = getattr(args, "classifiers", [])
    if classifiers:
        lines.append(
            f"- Classifiers ({', '.join(classifiers)}): scored by accuracy on the scored rows' incomplete inputs (never fitted on); "
            "`--metric`, `--norm`, `--norm-source`, `--norm-rows` and `--round-discrete` apply to the imputers only."
        )
    lines.append("")
    return lines


def _mechanism_title(args):
    s = settings_of(args)
    if s["mechanism"] == "mcar":
        return "MCAR" + (" (exact count)" if s["mcar_draw"] == "count" else "")
    if s["mechanism"] in IMAGE_MECHANISMS:
        return f"{s['mechanism']} image masks"
    return s["mechanism"].upper()


def format_markdown(args, results, command, elapsed, ncols=None, paths=None):
    """The report. `ncols`: dataset -> number of feature columns; `paths`: from `sidecar_paths`."""
    ncols = ncols or {}
    paths = paths or {}
    s = settings_of(args)
    metric = METRIC_NAMES[s["metric"]]
    mech = _mechanism_title(args)
    rate_sweep, dims_sweep = len(args.miss_rates) > 1, len(args.dims) > 1
    single_rate = _rate_label(args.miss_rate)
    where = "images" if s["mechanism"] in IMAGE_MECHANISMS else "UCI tables"
    imputers, classifiers = imputers_of(args), list(getattr(args, "classifiers", []))
    headline = metric if not classifiers else "Accuracy" if not imputers else f"{metric} and accuracy"
    if rate_sweep and dims_sweep:
        title = f"# {headline} vs missing rate and number of dimensions, {mech} ({args.protocol} protocol)"
    elif rate_sweep:
        title = f"# {headline} vs missing rate, {mech} ({args.protocol} protocol)"
    elif dims_sweep:
        title = f"# {headline} vs number of dimensions, {single_rate} {mech} ({args.protocol} protocol)"
    else:
        title = f"# {headline} on {where}, {single_rate} {mech} ({args.protocol} protocol)"
    if args.dims == [None]:
        columns = "Every column of each table is used (label column excluded)"
        if getattr(args, "label_feature", []):
            columns = (f"Every column of each table is used; the label column is excluded, except for {', '.join(args.label_feature)}, "
                       "whose numeric label is its last feature (imputed and scored like the others)")
        if s["mechanism"] in IMAGE_MECHANISMS:
            image_models = [m for m in args.models if takes_images(registered_name(m))]
            others = [m for m in args.models if m not in image_models]
            columns = "Every pixel of each image is used; " + "; ".join(
                part for part in (
                    f"{', '.join(image_models)} take{'s' if len(image_models) == 1 else ''} images and get{'s' if len(image_models) == 1 else ''} "
                    "them as [N, H, W, 1] (scaled per channel)" if image_models else "",
                    f"{', '.join(others)} get{'s' if len(others) == 1 else ''} one row of H x W pixels per image (scaled per pixel)" if others else "",
                ) if part
            )
    else:
        columns = (
            f"Dimensions {', '.join(map(str, args.dims))}: a run with d dimensions uses the first d feature columns of the table "
            "in file order (label column excluded); g2lgn.md Fig. 4 does not say which columns it keeps, so that choice is ours. "
            + ("The mask is drawn for the whole table from the seed and cut to those columns, so a smaller d scores a subset of the "
               "same removed entries" if s["mechanism"] == "mcar" else
               f"The {s['mechanism'].upper()} mask depends on the values, so it is drawn on the d columns used")
        )
    protocol = {
        "transductive": "fit on the incomplete table, impute it, score its removed entries (as GAIN's reference code and g2lgn.md Table 1)",
        "holdout": "fit on a random 80% of rows, impute the other 20% (unseen), score their removed entries",
        "kfold": "EMFlow / MCFlow's 5 folds: seed k fits on four folds of a seeded shuffle and scores fold k mod 5 (unseen)",
    }[args.protocol]
    classifier_protocol = ""
    if classifiers:
        scored = {"holdout": "the other 20% of the rows", "kfold": "the test fold"}.get(args.protocol, "the scored rows")
        classifier_protocol = (
            f" Classifier{'s' if len(classifiers) > 1 else ''} {', '.join(classifiers)}: `ZooClassifier` fitted on the fitted rows' "
            f"incomplete inputs (NaN at the removed entries, the same mask and split as the imputers) with the data set's labels, "
            f"scored by accuracy on {scored}' incomplete inputs (never fitted on); no imputation is scored for "
            f"{'them' if len(classifiers) > 1 else 'it'}."
        )
    units = {"minmax": "normalised by the", "zscore": "z-scored with the", "none": "in raw units"}[s["norm"]]
    if s["norm"] != "none":
        units += (" truth's" if s["norm_source"] == "truth" else " observed entries'") + " per-column " + (
            "min/max" if s["norm"] == "minmax" else "mean/std") + (
            " of the scored rows" if s["norm_rows"] == "scored" and args.protocol != "transductive" else
            " of the whole table" if args.protocol == "transductive" else " of every row")
    lines = [
        title,
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine_description()}. Date: {datetime.date.today().isoformat()}. Total wall time: {elapsed / 60:.1f} min."
        + (
            f" Peers ({', '.join(getattr(args, 'peer_models', {}))}) ran on the same masks in `.venv-peers` (`make peers`), with "
            + ", ".join(f"{k} {v}" for k, v in sorted(PEER_VERSIONS.items()))
            + "; their fit time is their own fit-and-impute call, without their interpreter's start-up."
            if getattr(args, "peer_models", None) else ""
        )
        + (
            f" Before the timed runs each zoo model was fitted once, untimed, on the first {WARM_UP_ROWS} rows of {args.datasets[0]}"
            " (`--warm-up`): the process's one-time start-up costs are in no model's fit time."
            if getattr(args, "warm_up", False) else ""
        ),
        "",
        "Protocol: "
        + (f"{mech} over the whole table" if s["mechanism"] == "mcar" else mech if s["mechanism"] in IMAGE_MECHANISMS else f"{mech} masks")
        + (f"; {protocol}; {metric} over the removed entries, {units}." if imputers else ".")
        + classifier_protocol
        + (f" Missing rates: {', '.join(_rate_label(r) for r in args.miss_rates)}." if rate_sweep else "")
        + f" Seeds 0..{args.seeds - 1} (the seed sets the mask, the split, the model and the shuffling). {columns}. Model parameters are the zoo's defaults"
        + ("" if not any(args.overrides.values()) else f", with overrides {args.overrides}")
        + "."
        + (
            f" Imputations of columns with fewer than {DISCRETE_MAX_LEVELS} distinct observed values are rounded to integers before "
            "scoring (`--round-discrete`, as GAIN's reference code does)."
            if getattr(args, "round_discrete", False) and imputers
            else ""
        )
        + "".join(f" {note.strip()}" for note in getattr(args, "note", [])),
        "",
    ]
    lines += settings_lines(args, ncols)
    # Links relative to the markdown, which sits beside its CSV and plots.
    if "csv" in paths:
        name = os.path.basename(paths["csv"])
        lines += [f"Per-run numbers: [`{name}`]({name}) (columns {', '.join(csv_columns(s['metric']))}).", ""]
    for key, (x_key, classify) in PLOT_KEYS.items():
        if key in paths:
            what = ("accuracy" if classify else metric) + (" vs missing rate" if x_key == "miss_rate" else " vs number of dimensions")
            lines += [f"![{what}]({os.path.basename(paths[key])})", ""]
    failures = getattr(args, "peer_failures", {})
    if failures:
        lines += ["Peers that failed (their later runs on that data set were skipped; their cells say 'failed'):", ""]
        lines += [f"- {model} on {dataset}: {error}" for (model, dataset), error in failures.items()]
        lines.append("")
    for models, classify in ((imputers, False), (classifiers, True)):
        if not models:
            continue
        if classifiers:  # never RMSE and accuracy in one table: a section each
            lines += ["## Classifiers: accuracy" if classify else f"## Imputers: {metric}", ""]
        if rate_sweep or dims_sweep:
            lines += _sweep_tables(args, results, ncols, models, classify)
        else:
            lines += _single_tables(args, results, models, classify)
    return "\n".join(lines).rstrip("\n") + "\n"


def _mean_seconds(seconds):
    """Mean fit time as '12.3'; '—' where no run finished (a peer that failed)."""
    return f"{np.mean(seconds):.1f}" if seconds else "—"


def _single_tables(args, results, models=None, classify=False):
    """The score table and the fit-time table of `models` (default: every model), one column per dataset.
    `classify`: the models are classifiers and the scores accuracies (no paper column)."""
    models = args.models if models is None else models
    # Table 1 is 20% Bernoulli MCAR on every column, RMSE; a paper column elsewhere would compare unlike with unlike.
    reference = None if classify else paper_reference(args)
    paper = reference is not None
    paper_table = reference[0] if paper else {}
    metric = METRIC_NAMES[settings_of(args)["metric"]]
    if classify:
        first = "Accuracy on the scored rows' incomplete inputs, mean ± sample std over seeds (ddof = 1, n = number of seeds; higher is better)."
    else:
        first = f"{metric}, mean ± sample std over seeds (ddof = 1, n = number of seeds; lower is better)" + (
            f"; paper = {reference[1]} where it reports the model." if paper else
            " (g2lgn.md Table 1 is RMSE at 20% Bernoulli MCAR on every column, min-max units, and emflow.md Table 1 the same or "
            "MAR at its Table 4 rates under five folds, so no paper column).")
    lines = [
        first,
        "",
        "| model | " + " | ".join(f"{d} (ours) | {d} (paper)" if paper else d for d in args.datasets) + " | mean fit time (s) |",
        "|---|" + ("---|---|" if paper else "---|") * len(args.datasets) + "---|",
    ]
    for model in models:
        cells, times = [], []
        for dataset in args.datasets:
            runs = results.get((model, dataset), [])
            times += [r.fit_seconds for r in runs]
            cells.append(_mean_std(runs))
            if paper:
                cells.append(paper_table.get(model, {}).get(dataset, "—"))
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {_mean_seconds(times)} |")
    lines += ["", "Fit time per dataset (s, mean over seeds):", "", "| model | " + " | ".join(args.datasets) + " |"]
    lines.append("|---|" + "---|" * len(args.datasets))
    for model in models:
        lines.append(f"| {model} | " + " | ".join(_mean_seconds([r.fit_seconds for r in results.get((model, d), [])]) for d in args.datasets) + " |")
    lines.append("")
    return lines


def _sweep_tables(args, results, ncols, models=None, classify=False):
    """One score table and one fit-time table per dataset (and per value of the other sweep if both sweep),
    for `models` (default: every model); `classify`: classifiers, scored by accuracy (no paper column)."""
    models = args.models if models is None else models
    groups = _group(results)
    rate_sweep = len(args.miss_rates) > 1
    paper_setting = _paper_units(args) and not classify
    metric = "Accuracy" if classify else METRIC_NAMES[settings_of(args)["metric"]]
    better = "higher" if classify else "lower"
    mech = _mechanism_title(args)
    lines = [f"{metric}, mean ± sample std over seeds (ddof = 1, n = number of seeds; {better} is better); fit time in seconds, mean over seeds.", ""]
    for dataset in args.datasets:
        n = ncols.get(dataset)
        # x: the swept quantity; fixed: the other one, one table each.
        if rate_sweep:
            panels = [(f"{_columns_used(d, n)} dimensions", [(r, d) for r in args.miss_rates]) for d in args.dims]
            heads = [_rate_label(r) for r in args.miss_rates]
        else:
            panels = [(f"{_rate_label(r)} {mech}", [(r, d) for d in args.dims]) for r in args.miss_rates]
            heads = [f"d={_columns_used(d, n)}" for d in args.dims]
        for fixed, cells in panels:
            keys = [(rate, _columns_used(d, n)) for rate, d in cells]
            paper = paper_setting and [i for i, (rate, d) in enumerate(cells) if rate == PAPER_MISS_RATE and d in (None, n)]
            lines += [f"### {dataset} ({n} feature columns), {fixed}" if n else f"### {dataset}, {fixed}", ""]
            header = heads + (["paper (Table 1, 20%, all columns)"] if paper else [])
            lines += ["| model | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
            for model in models:
                row = [_mean_std(groups.get((model, dataset, rate, d), [])) for rate, d in keys]
                if paper:
                    row.append(PAPER_TABLE_1.get(model, {}).get(dataset, "—"))
                lines.append(f"| {model} | " + " | ".join(row) + " |")
            lines += ["", "Fit time (s):", "", "| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
            for model in models:
                times = [_mean_seconds([r.fit_seconds for r in groups.get((model, dataset, *key), [])]) for key in keys]
                lines.append(f"| {model} | " + " | ".join(times) + " |")
            lines.append("")
    return lines


def write_csv(path, results, args=None):
    """One row per run; the imputers' score under the metric's name, the classifiers' under `accuracy`
    (the other one empty), and every switch has a column."""
    s = settings_of(args) if args is not None else {name: default for name, _, default in SWITCHES}
    classifiers = getattr(args, "classifiers", []) if args is not None else []
    switches = [s[name] if s[name] is not None else "" for name, _, _ in SWITCHES]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_columns(s["metric"]))
        for (model, dataset), runs in results.items():
            for r in runs:
                score = f"{r.score:.6f}"
                scores = ["", score] if model in classifiers else [score, ""]  # [metric, accuracy]
                writer.writerow(
                    [model, dataset, r.miss_rate, r.dims, r.seed, *scores, f"{r.fit_seconds:.3f}", f"{r.missing_fraction:.6f}"]
                    + switches
                )


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise SystemExit(
            f"python -m training.benchmark: error: plots of a sweep need matplotlib ({err}); "
            "install it with `pip install matplotlib` (or keraszoo[dev]), or sweep a single value"
        ) from err


def write_plot(path, args, results, ncols, x_key, classify=False):
    """Score vs `x_key` ("miss_rate" or "dims"): one panel per dataset (per value of the other sweep too,
    as rows, if both sweep), one line per model, error bars = sample std over seeds (ddof = 1); every
    switch in the figure's title. `classify`: plot the classifiers' accuracy, else the imputers' metric."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = _group(results)
    metric = "accuracy" if classify else METRIC_NAMES[settings_of(args)["metric"]]
    models = getattr(args, "classifiers", []) if classify else imputers_of(args)
    mech = _mechanism_title(args)
    rows = args.dims if x_key == "miss_rate" else args.miss_rates
    numeric_rates = all(not isinstance(r, str) for r in args.miss_rates)
    fig = Figure(figsize=(max(4.5 * len(args.datasets), 9.0), 3.6 * len(rows) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)  # Agg: PNGs without a display and without pyplot's global state
    fig.suptitle(settings_summary(args), fontsize="x-small", wrap=True)
    axes = fig.subplots(len(rows), len(args.datasets), squeeze=False)
    for i, fixed in enumerate(rows):
        for j, dataset in enumerate(args.datasets):
            ax, n = axes[i][j], ncols[dataset]
            if x_key == "miss_rate":
                points = [(rate if numeric_rates else k, rate, _columns_used(fixed, n)) for k, rate in enumerate(args.miss_rates)]
                ax.set_title(f"{dataset}, {_columns_used(fixed, n)} dims")
                ax.set_xlabel(f"missing rate ({mech})")
            else:
                points = [(_columns_used(d, n), fixed, _columns_used(d, n)) for d in args.dims]
                ax.set_title(f"{dataset}, {_rate_label(fixed)} {mech}")
                ax.set_xlabel("number of dimensions (first d columns)")
            points.sort(key=lambda p: p[0])
            xs = [x for x, _, _ in points]
            for model in models:
                scores = [[r.score for r in groups[(model, dataset, rate, d)]] for _, rate, d in points]
                ax.errorbar(xs, [np.mean(s) for s in scores], yerr=[sample_std(s) for s in scores], marker="o", capsize=3, label=model)
            ax.set_xticks(xs)
            if x_key == "miss_rate":
                ax.set_xticklabels([_rate_label(rate) for _, rate, _ in points])
            ax.set_ylabel(f"{metric} (mean ± sample std, n={args.seeds})")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------------------------------
def default_output(args):
    """benchmarks/results/uci_mcar20.md for the defaults; every non-default switch adds a suffix."""
    s = settings_of(args)
    if len(args.miss_rates) > 1:
        rates = "_rates"
    elif isinstance(args.miss_rate, str):
        rates = "_" + args.miss_rate
    else:
        rates = f"{int(round(args.miss_rate * 100))}"
    dims = "" if len(args.dims) == 1 else "_dims"
    prefix = "images" if s["mechanism"] in IMAGE_MECHANISMS else "uci"
    suffixes = "".join([
        "" if s["protocol"] == "transductive" else f"_{s['protocol']}",
        "_count" if s["mcar_draw"] == "count" else "",
        "" if s["metric"] == "rmse" else f"_{s['metric']}",
        "" if s["norm"] == "minmax" else f"_{s['norm']}",
        "_observed" if s["norm_source"] == "observed" else "",
        "_allrows" if s["norm_rows"] == "all" else "",
        "_rounded" if s["round_discrete"] else "",
        "" if s["max_rows"] is None else f"_rows{s['max_rows']}",
        "_accuracy" if getattr(args, "classifiers", []) else "",
    ])
    return os.path.join("benchmarks", "results", f"{prefix}_{s['mechanism']}{rates}{dims}{suffixes}.md")


def main(argv=None, prog="python -m training.benchmark"):
    """Run every (model, dataset, rate, dims, seed); returns {(model, dataset): [Run, ...]}."""
    from keraszoo.console import quiet_tensorflow

    argv_list = sys.argv[1:] if argv is None else list(argv)
    quiet_tensorflow(verbose="--verbose" in argv_list)  # before the models (and TensorFlow) are imported
    args = parse_args(argv, prog)
    from keraszoo.validation import ImputationInputError

    command = "python -m training.benchmark " + shlex.join(sys.argv[1:] if argv is None else argv)  # quoted: copy-pastable
    output = args.output or default_output(args)
    paths = sidecar_paths(output, args)
    # Load and check everything before the first run, so bad input fails in seconds, not after an hour.
    tables, labels = load_data(args)
    ncols = {name: int(np.prod(table.shape[1:])) for name, table in tables.items()}
    problem = check_dims([d for d in args.dims if d is not None], tables)
    if problem:
        build_parser().error(problem)
    if len(paths) > 1:
        _require_matplotlib()
    settings = settings_of(args)
    metric = METRIC_NAMES[settings["metric"]]

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
    # A peer is another project in another environment: its failure (HyperImpute 0.1.17 calls
    # LogisticRegression(multi_class=...), which scikit-learn 1.9.1 no longer accepts, on tables with
    # discrete columns) is reported in the results, not allowed to end an hours-long run of the zoo's models.
    args.peer_failures = {}
    start = time.perf_counter()
    if args.warm_up:
        warm_up(args, tables[args.datasets[0]], labels.get(args.datasets[0]), settings, args.datasets[0], quiet=args.quiet)
    for dataset, model, rate, dims, seed in plan:
        used = _columns_used(dims, ncols[dataset])
        label = f"{dataset} {model} {_rate_label(rate)} d={used} seed {seed}"
        if (model, dataset) in args.peer_failures:
            progress.finish(f"{label}: skipped (failed before)")
            continue
        progress.start(label)
        classify = model in args.classifiers
        try:
            if model in args.peer_models:
                try:
                    score, seconds, missing = run_peer(args.peer_models[model], tables[dataset], seed, rate, settings, dims, dataset)
                except RuntimeError as err:
                    last = [line for line in str(err).splitlines() if line.strip()][-1].strip()
                    args.peer_failures[(model, dataset)] = f"seed {seed}: {last}"
                    progress.finish(f"{label}: FAILED ({last}); its later runs on {dataset} are skipped")
                    continue
            elif classify:
                score, seconds, missing = run_classifier(
                    registered_name(model), args.overrides[model], tables[dataset], labels[dataset], seed, rate, settings, dims, dataset
                )
            else:
                callback = progress.training_callback(label)
                score, seconds, missing = run_one(
                    registered_name(model), args.overrides[model], tables[dataset], seed, rate, settings, dims, dataset,
                    callbacks=None if callback is None else [callback],
                )
        except ImputationInputError as err:  # e.g. a pixel missing in every image of a small --max-rows subset
            progress.close()
            raise SystemExit(f"python -m training.benchmark: error: run {label}: {err}") from err
        results.setdefault((model, dataset), []).append(Run(score, seconds, rate, used, seed, missing))
        progress.finish(f"{label}: {'accuracy' if classify else metric} {score:.4f} ({seconds:.1f} s)")
    progress.close()
    elapsed = time.perf_counter() - start

    report = format_markdown(args, results, command, elapsed, ncols, paths)
    print(report)
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output, "w") as f:
        f.write(report)
    write_csv(paths["csv"], results, args)
    for key, (x_key, classify) in PLOT_KEYS.items():
        if key in paths:
            write_plot(paths[key], args, results, ncols, x_key, classify=classify)
    print("written to " + ", ".join([output] + list(paths.values())))
    return results


if __name__ == "__main__":
    main()
