"""Train any registered deep model with `model.fit`: TensorBoard, checkpoints, held-out RMSE, 1 CPU to many GPUs/machines.

    python -m training.train --model gain --dataset spam --mechanism mcar --miss-rate 0.2 \\
        --epochs 50 --batch-size 128 --seed 0 --strategy default --logdir runs/gain_spam \\
        --export saved_models/serving [--config FILE] [--set KEY=VALUE ...] [--early-stopping 10]
    keraszoo train ...                       # the same command
    tensorboard --logdir runs/gain_spam      # losses, learning rates, held-out RMSE (and images)

Configuration (every key is a model constructor parameter or a training key, `TRAINING_DEFAULTS`),
later sources overriding earlier ones:

1. the model's constructor defaults and `TRAINING_DEFAULTS` (a model's own `fit_arrays` batch size
   replaces the latter's);
2. ``training/configs/<model>.json`` if it exists (a new model needs none: it trains with its
   constructor defaults);
3. ``--config FILE`` (a JSON object of such keys; a run's saved ``config.json`` also works: its
   ``params`` and ``training`` sections are read);
4. ``--set KEY=VALUE`` (VALUE is parsed as JSON or a Python literal, else kept as a string);
5. the explicit flags ``--epochs``, ``--batch-size``, ``--learning-rate``, ``--early-stopping``,
   ``--val-fraction``, ``--max-rows``.

The model's ``seed`` parameter is ``--seed`` unless a config sets it. An unknown key is an error listing
the valid ones. The resolved configuration is written to ``<logdir>/config.json`` before training.

Data: the data set's numeric table (images flattened to pixels); `--max-rows` keeps a seeded random
subset of rows. Missing entries are simulated on the whole table with `--mechanism` at `--miss-rate`
(image data sets also take the image mechanisms square, trapezoid and noise), then a seeded
`val_fraction` of the rows (default 20%) is held out. Min-max scaling is fitted on the observed
entries of the training rows. Each epoch (one pass over the training rows, in global batches of
`batch_size`), the model imputes the held-out rows and their simulated-missing entries are scored
with `keraszoo.metrics.rmse` (GAIN's protocol): ``val_rmse``.

Outputs in ``--logdir``: ``config.json``; TensorBoard runs ``train``, ``validation`` and, for image data
sets, ``images`` (see `training/callbacks.py`); ``backup/`` (`keras.callbacks.BackupAndRestore`: a
run killed mid-training and started again with the same command resumes from its last finished
epoch, optimizer states included; deleted when training completes); ``best.keras``, the model with
the lowest ``val_rmse`` so far (`ModelCheckpoint`; ``best.json`` says its epoch and value, so a
resumed run keeps it unless it does better); ``final.weights.h5``, the weights after the last
epoch. With ``--early-stopping P`` training stops after P epochs without a better ``val_rmse``. At
the end the best model is scored and, with ``--export DIR``, exported for TF Serving as
``DIR/<model>_<dataset>/<next free version>/`` (`serving.export`, name set by ``--export-name``).

Strategies (`keraszoo.distribute`): ``default`` (one device), ``mirrored`` (all local GPUs; with
``--cpu-replicas N``, N logical CPU devices instead, for testing), ``multiworker`` (machines listed in
``TF_CONFIG``; every worker runs the same command). ``--batch-size`` is the global batch; with several
replicas each call runs one step (``steps_per_execution`` 1, see `keraszoo.distribute`). With several
workers, the chief (worker 0) writes the shared outputs above; worker i writes its backup and final
weights under ``<logdir>/workers/<i>/``.
"""
import argparse
import ast
import json
import math
import os
import platform
import sys
import time

import numpy as np

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

#: training keys of a config, with their defaults (None: chosen automatically / off).
TRAINING_DEFAULTS = {
    "epochs": 100,
    "batch_size": 128,
    "learning_rate": None,
    "steps_per_execution": None,
    "early_stopping": None,
    "val_fraction": 0.2,
    "max_rows": None,
}

#: resolved-config entries that must match for a run to resume from an existing backup.
_RESUME_KEYS = ("model", "dataset", "mechanism", "miss_rate", "seed", "params")
_RESUME_TRAINING_KEYS = ("batch_size", "learning_rate", "steps_per_execution", "val_fraction", "max_rows")


class ConfigError(ValueError):
    """Bad command-line input or configuration (reported as one line, without a traceback)."""


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------
def parse_value(text):
    """A --set value: JSON (null, true, [1, 2]), else a Python literal (None, 1e-3), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(items):
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        values[key.strip()] = parse_value(value.strip())
    return values


def read_config_file(path):
    """The keys of a JSON config file (flat, or a saved config.json's `params` and `training` sections)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise ConfigError(f"config file {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of KEY: VALUE, got {type(data).__name__}")
    if isinstance(data.get("params"), dict) or isinstance(data.get("training"), dict):
        # A run's saved config.json: its settings; what the run derived (steps per epoch, data sizes) is
        # recomputed, and the seed given to the model is a model parameter there.
        return {**data.get("params", {}), **data.get("training", {})}
    return data


def model_config_path(model, configs_dir=None):
    return os.path.join(configs_dir or CONFIGS_DIR, f"{model}.json")


def model_training_defaults(model):
    """The training keys a model declares itself (its `default_batch_size`, e.g. not-MIWAE's 16), under
    every other source of configuration."""
    from keraszoo.registry import get_model_class

    batch_size = getattr(get_model_class(model), "default_batch_size", None)
    return {} if batch_size is None else {"batch_size": batch_size}


def resolve_config(model, config_file=None, sets=None, flags=None, configs_dir=None):
    """(model params, training params) for `model` from the layered sources in the module doc.

    `sets` and `flags` are dicts (flags with None values are ignored). Model params hold only keys
    some source set (the constructor supplies the rest). Raises ConfigError for an unknown key.
    """
    from keraszoo.registry import model_parameters

    model_keys = model_parameters(model)
    layers = []
    default_path = model_config_path(model, configs_dir)
    if os.path.exists(default_path):
        layers.append((default_path, read_config_file(default_path)))
    if config_file:
        layers.append((config_file, read_config_file(config_file)))
    layers.append(("--set", dict(sets or {})))
    layers.append(("the command line", {k: v for k, v in (flags or {}).items() if v is not None}))
    merged = {}
    for source, values in layers:
        unknown = sorted(set(values) - set(model_keys) - set(TRAINING_DEFAULTS))
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {', '.join(unknown)} in {source}; valid keys for model {model!r}: "
                f"model parameters {', '.join(sorted(model_keys)) or '(none)'}; "
                f"training {', '.join(TRAINING_DEFAULTS)}"
            )
        merged.update(values)
    params = {k: v for k, v in merged.items() if k in model_keys}
    training = {**TRAINING_DEFAULTS, **model_training_defaults(model), **{k: v for k, v in merged.items() if k in TRAINING_DEFAULTS}}
    return params, _check_training(training)


def _check_training(training):
    def integer(key, low, allow_none=False):
        value = training[key]
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < low:
            raise ConfigError(f"{key} must be an integer >= {low}{' or null' if allow_none else ''}, got {value!r}")
        return int(value)

    training["epochs"] = integer("epochs", 1)
    training["batch_size"] = integer("batch_size", 1)
    training["steps_per_execution"] = integer("steps_per_execution", 1, allow_none=True)
    training["early_stopping"] = integer("early_stopping", 1, allow_none=True)
    training["max_rows"] = integer("max_rows", 2, allow_none=True)
    fraction = training["val_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1), got {fraction!r}")
    training["val_fraction"] = float(fraction)
    lr = training["learning_rate"]
    if lr is None:  # the model's own default rate for each optimizer
        return training
    rates = lr if isinstance(lr, dict) else {"learning_rate": lr}
    for key, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0 or not math.isfinite(rate):
            raise ConfigError(f"learning_rate must be a positive number or a dict of them per optimizer, got {lr!r}")
    training["learning_rate"] = {k: float(v) for k, v in lr.items()} if isinstance(lr, dict) else float(lr)
    return training


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------
class Data:
    """Training and held-out examples (raw scale, complete truth) with their masks (1 = observed).

    `x_*` are [rows, D] for tables and [rows, H, W, C] for image data sets (`image_shape` (H, W, C));
    `y_*` are the labels (class indices; `classes` their names) when the data set has them.
    """

    def __init__(self, x_train, m_train, x_val, m_val, image_shape=None, value_range=None, y_train=None, y_val=None, classes=None):
        self.x_train, self.m_train, self.x_val, self.m_val = x_train, m_train, x_val, m_val
        self.image_shape = image_shape
        self.value_range = value_range
        self.y_train, self.y_val, self.classes = y_train, y_val, classes


def held_out_rmse(data, imputed):
    """RMSE over the held-out simulated-missing entries: tables as GAIN scores them (each column scaled by
    the truth's min and max, `keraszoo.metrics.rmse`); images with every pixel scaled by the data set's
    value range, since a per-pixel range (a border pixel that is almost always 0) would blow up its errors."""
    from keraszoo import metrics

    if data.image_shape is None:
        return metrics.rmse(data.x_val, imputed, data.m_val)
    low, high = data.value_range
    span = (high - low) or 1.0
    return metrics.rmse((data.x_val - low) / span, (np.asarray(imputed) - low) / span, data.m_val, normalize=False)


def miss_rate_for(mechanism, miss_rate, dataset):
    """The rate given to `simulate`: the flag's value; None or "emflow" under MAR (see --miss-rate's help)."""
    if mechanism == "mar":
        if miss_rate is None:
            return None  # emflow.md eq. 26 as written
        if isinstance(miss_rate, str):
            from keraszoo.data.missingness import emflow_mar_rate

            try:
                return emflow_mar_rate(dataset)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        return miss_rate
    if isinstance(miss_rate, str):
        raise ConfigError(f"--miss-rate emflow is for --mechanism mar (EMFlow's Table 4 MAR rates), not {mechanism}")
    return 0.2 if miss_rate is None and mechanism in ("mcar", "mnar") else miss_rate


def prepare_data(dataset, mechanism, miss_rate, seed, val_fraction=0.2, max_rows=None, data_dir=None, labels=False):
    """Load `dataset`, simulate missingness on every row, hold out a seeded `val_fraction` of rows.

    Image data sets give [rows, H, W, 1] (grayscale with a channel axis); `labels=True` also returns the
    labels as class indices (an error for a data set without labels).
    """
    from keraszoo.data import load_dataset, simulate
    from keraszoo.data.missingness import IMAGE_MECHANISMS

    loaded = load_dataset(dataset, data_dir=data_dir)
    x = loaded.numeric_array()
    images = loaded.images
    image_shape = None
    if images is not None and int(np.prod(images.shape[1:])) == x.shape[1]:
        image_shape = tuple(int(s) for s in images.shape[1:])
        if len(image_shape) == 2:
            image_shape += (1,)
        x = x.reshape((len(x),) + image_shape)
    if mechanism in IMAGE_MECHANISMS and image_shape is None:
        raise ConfigError(f"mechanism {mechanism!r} is for image data sets; {dataset!r} is a table: use mcar, mar or mnar")
    if mechanism in ("mar", "mnar") and image_shape is not None:
        raise ConfigError(f"mechanism {mechanism!r} is for tables; {dataset!r} is an image data set: use mcar, square, trapezoid or noise")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"data set {dataset!r} has missing or non-finite values in its numeric columns: training needs a complete truth")
    y, classes = None, None
    if labels:
        if loaded.labels is None:
            raise ConfigError(f"data set {dataset!r} has no labels, so a classifier cannot be trained on it")
        classes, y = np.unique(np.asarray(loaded.labels), return_inverse=True)
    rng = np.random.default_rng(seed)
    if max_rows is not None and max_rows < len(x):
        keep = np.sort(rng.permutation(len(x))[:max_rows])
        x = x[keep]
        y = None if y is None else y[keep]
    if image_shape is not None and mechanism in IMAGE_MECHANISMS:
        mask = simulate(x[..., 0], mechanism, miss_rate, seed=seed)[..., None] * np.ones_like(x, dtype=np.float32)
    else:
        mask = simulate(x, mechanism, miss_rate, seed=seed)
    order = rng.permutation(len(x))
    n_val = int(round(val_fraction * len(x)))
    if n_val < 1 or n_val >= len(x):
        raise ConfigError(f"val_fraction {val_fraction} of {len(x)} rows leaves no training or no held-out row")
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    if not labels and not (mask[val] == 0).any():
        raise ConfigError("the held-out rows have no simulated-missing entry to score: raise --miss-rate or --val-fraction")
    value_range = (float(x.min()), float(x.max())) if image_shape else None
    y_train, y_val = (None, None) if y is None else (y[train].astype(np.int32), y[val].astype(np.int32))
    return Data(x[train], mask[train], x[val], mask[val], image_shape, value_range, y_train, y_val, classes)


# --------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------
class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" where X says something: not for None, False or [], and not twice (a help text
    that states its own default, e.g. "(default 100)", keeps only that)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default is None or action.default is False or action.default == [] or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def build_parser(prog="python -m training.train"):
    from keraszoo.console import ArgumentParser

    models, datasets = _names()
    parser = ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=_DefaultsFormatter,
        epilog=f"models: {', '.join(models)}. datasets: {', '.join(datasets)}. "
        "Config keys, outputs and strategies: see the module docstring (python -m pydoc training.train).",
    )
    parser.add_argument("--model", required=True, help="registered deep model (imputer or classifier)")
    parser.add_argument("--dataset", required=True, help="data set name")
    parser.add_argument(
        "--mechanism", default="mcar", help="mcar, mar or mnar for tables; mcar, square, trapezoid or noise for image data sets"
    )
    parser.add_argument(
        "--miss-rate",
        type=_miss_rate,
        default=None,
        help="mcar: the fraction of entries made missing (default 0.2); mnar: the expected overall missing rate (default 0.2); "
        "mar: the removal rate of the LAST 30%% of features (the first 70%% stay observed) by a calibrated offset in eq. 26's "
        "sigmoid, 'emflow' for emflow.md Table 4's rate of the data set, or omitted for eq. 26 as written (every "
        "removal probability >= 0.5 on min-max data); square/trapezoid/noise: the fraction of each image removed",
    )
    parser.add_argument("--epochs", type=int, help=f"passes over the training rows (default {TRAINING_DEFAULTS['epochs']})")
    parser.add_argument("--batch-size", type=int, help=f"global batch size (default {TRAINING_DEFAULTS['batch_size']})")
    parser.add_argument("--learning-rate", type=float, help="one learning rate for all the model's optimizers (default: each one's own)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the mask, the split, the shuffling and the model")
    parser.add_argument("--strategy", default="default", help="default, mirrored or multiworker (TF_CONFIG)")
    parser.add_argument("--cpu-replicas", type=int, help="mirrored only: split the CPU into N logical devices")
    parser.add_argument("--logdir", help="TensorBoard logs, config, backups, checkpoints (default runs/<model>_<dataset>)")
    parser.add_argument("--export", metavar="DIR", help="export the best model for TF Serving under DIR")
    parser.add_argument("--export-name", help="exported model name (default <model>_<dataset>)")
    parser.add_argument("--force", action="store_true", help="export even a model no better than mean imputation (or the majority class)")
    parser.add_argument("--config", metavar="FILE", help="JSON file of model and training keys (a run's config.json works)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key")
    parser.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after PATIENCE epochs without a better held-out score")
    parser.add_argument("--val-fraction", type=float, help=f"fraction of rows held out (default {TRAINING_DEFAULTS['val_fraction']})")
    parser.add_argument("--max-rows", type=int, help="use a seeded random subset of this many rows")
    parser.add_argument("--data-dir", help="data directory (default $KERASZOO_DATA_DIR)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="Keras's progress bar (default: when stdout is a terminal)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs and full tracebacks")
    return parser


def _names():
    """(deep model names, data set names) for the help text; empty if the registry cannot load."""
    try:
        from keraszoo.data import list_datasets
        from keraszoo.registry import list_models

        return list_models("deep"), list_datasets()
    except Exception:  # noqa: BLE001 - help must print even if a model module is broken
        return [], []


def _miss_rate(text):
    if text.strip().lower() == "emflow":
        return "emflow"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1) or 'emflow', got {text!r}") from None


def check_arguments(args):
    """Names and ranges of the command line, before anything heavy happens. Raises ConfigError."""
    from keraszoo.data import list_datasets
    from keraszoo.data.missingness import MECHANISMS
    from keraszoo.distribute import STRATEGIES
    from keraszoo.registry import list_models

    deep = list_models("deep")
    if args.model not in deep:
        what = "is not a deep model (it has no model.fit training; use keraszoo impute)" if args.model in list_models() else "is not a registered model"
        raise ConfigError(f"{args.model!r} {what}; deep models: {', '.join(deep)}")
    if args.dataset not in list_datasets():
        raise ConfigError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(list_datasets())}")
    if args.mechanism not in MECHANISMS:
        raise ConfigError(f"unknown mechanism {args.mechanism!r}; valid mechanisms: {', '.join(MECHANISMS)}")
    if isinstance(args.miss_rate, float) and not (0.0 < args.miss_rate < 1.0):
        raise ConfigError(f"--miss-rate must be in (0, 1), got {args.miss_rate}")
    if args.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {args.strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    if args.cpu_replicas is not None:
        if args.strategy != "mirrored":
            raise ConfigError("--cpu-replicas is for --strategy mirrored only")
        if args.cpu_replicas < 1:
            raise ConfigError(f"--cpu-replicas must be at least 1, got {args.cpu_replicas}")
    if args.export_name is not None and (os.path.basename(args.export_name) != args.export_name or args.export_name in ("", ".", "..")):
        raise ConfigError(f"--export-name must be a plain directory name, got {args.export_name!r}")


def _flags(args):
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "early_stopping": args.early_stopping,
        "val_fraction": args.val_fraction,
        "max_rows": args.max_rows,
    }


def make_callbacks(*, score, epochs, logdir, backup_dir, chief, early_stopping=None, images=None, metric="val_rmse"):
    """The callbacks of a run, in the order they must run (see training/callbacks.py).

    `metric` is the held-out value `score()` returns: ``val_rmse`` (lower is better) for imputers,
    ``val_accuracy`` (higher is better) for classifiers.
    """
    import keras

    from training import callbacks as cb

    mode = "max" if metric.endswith("accuracy") else "min"
    callbacks = [cb.HeldOutRMSE(score, name=metric), cb.OptimizerLearningRates()]
    callbacks.append(keras.callbacks.BackupAndRestore(backup_dir, double_checkpoint=True))
    if chief:
        # Resuming: the best model so far stays unless an epoch beats it (ModelCheckpoint would restart from +inf).
        record = os.path.join(logdir, "best.json")
        best = cb.read_best(record, monitor=metric) if _has_backup(backup_dir) else None
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                os.path.join(logdir, "best.keras"), monitor=metric, mode=mode, save_best_only=True, initial_value_threshold=best
            )
        )
        callbacks.append(cb.BestRecord(record, monitor=metric, best=best, mode=mode))
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=metric, mode=mode, patience=early_stopping))
    if chief:
        callbacks.append(cb.ZooTensorBoard(log_dir=logdir, write_graph=False, update_freq="epoch", profile_batch=0))
        if images is not None:
            callbacks.append(images)
    callbacks.append(cb.EpochPrinter(epochs, print_fn=lambda line: print(line, flush=True)))
    return callbacks


def _has_backup(backup_dir):
    return os.path.isdir(backup_dir) and bool(os.listdir(backup_dir))


def _check_resume(config_path, config, backup_dir):
    """A backup is only valid for the same run: refuse to resume one written with other settings."""
    if not (_has_backup(backup_dir) and os.path.exists(config_path)):
        return
    with open(config_path) as f:
        old = json.load(f)
    changed = [k for k in _RESUME_KEYS if old.get(k) != config.get(k)]
    changed += [f"training.{k}" for k in _RESUME_TRAINING_KEYS if old.get("training", {}).get(k) != config["training"].get(k)]
    if changed:
        raise ConfigError(
            f"{backup_dir} holds the backup of an unfinished run with other settings ({', '.join(changed)} differ): "
            "run the same command to resume it, or use another --logdir"
        )


def run(args, argv):
    """Train as `args` says; returns a summary dict (also printed)."""
    params, training = resolve_config(args.model, args.config, parse_sets(args.set), _flags(args))

    # The strategy first: logical CPU devices and multi-worker collectives must be set up before any
    # TensorFlow op of the process.
    from keraszoo.distribute import get_strategy, is_chief, shard_dataset, steps_per_execution_limit, worker_info

    try:
        strategy = get_strategy(args.strategy, n_cpu_replicas=args.cpu_replicas)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(str(err)) from None
    import keras
    import tensorflow as tf

    from keraszoo.models.base import largest_divisor_at_most, make_dataset
    from keraszoo.registry import get_model, get_model_class, model_parameters, model_task
    from keraszoo.sklearn import ZooClassifier, ZooImputer
    from training.callbacks import ImputationImages

    classify = model_task(args.model) == "classify"
    if "seed" in model_parameters(args.model):
        params.setdefault("seed", args.seed)
    rate = miss_rate_for(args.mechanism, args.miss_rate, args.dataset)
    try:
        data = prepare_data(
            args.dataset, args.mechanism, rate, args.seed, training["val_fraction"], training["max_rows"], args.data_dir, labels=classify
        )
        model_shape = get_model_class(args.model).model_example_shape(data.x_train.shape[1:])
        # The estimator keeps the scaling (per column, or per channel for images) and the model's layout.
        estimator = (ZooClassifier if classify else ZooImputer)(args.model, **params)
        if classify:
            estimator.classes_ = data.classes
            if "n_classes" in model_parameters(args.model):
                params.setdefault("n_classes", len(data.classes))
                estimator.set_params(n_classes=params["n_classes"])
        x_train_incomplete = np.where(data.m_train == 1, data.x_train, np.nan)
        values, mask = estimator._read(x_train_incomplete, at_fit=True)
        estimator._fit_scaling(values, mask)
        x_scaled, m_scaled = estimator._scaled(values, mask)
    except (ValueError, FileNotFoundError) as err:  # bad rates for a mechanism, no observed value, data not found
        raise ConfigError(str(err)) from None
    n_train = len(data.x_train)
    batch_size = min(training["batch_size"], n_train)
    steps_per_pass = max(1, n_train // batch_size)

    task_type, task_id, n_workers = worker_info(strategy)
    chief = is_chief(strategy)
    logdir = args.logdir or os.path.join("runs", f"{args.model}_{args.dataset}")
    own_dir = logdir if chief else os.path.join(logdir, "workers", str(task_id))
    os.makedirs(own_dir, exist_ok=True)
    backup_dir = os.path.join(own_dir, "backup")

    try:
        with strategy.scope():
            model = get_model(args.model, **params)
            model.build((None,) + model_shape)
            wanted = training["steps_per_execution"] or model.default_steps_per_execution
            limit = steps_per_execution_limit(strategy)
            if limit is not None and wanted > limit:
                if training["steps_per_execution"]:
                    print(f"steps_per_execution {wanted} lowered to {limit} (several replicas: keraszoo.distribute)")
                wanted = limit
            # Keras runs whole executions: one that divides the steps of a pass keeps an epoch one pass.
            steps_per_execution = largest_divisor_at_most(steps_per_pass, wanted)
            if training["steps_per_execution"] and steps_per_execution != training["steps_per_execution"]:
                print(
                    f"steps_per_execution {training['steps_per_execution']} lowered to {steps_per_execution}, "
                    f"the largest divisor of the {steps_per_pass} steps of an epoch (so an epoch is one pass)"
                )
            model.compile_default(training["learning_rate"], steps_per_execution=steps_per_execution)
            model.build_optimizers()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {args.model!r}: {err}") from None
    steps_per_epoch = steps_per_pass
    estimator.model_ = model
    metric_name = "val_accuracy" if classify else "val_rmse"

    config = {
        "model": args.model,
        "dataset": args.dataset,
        "mechanism": args.mechanism,
        "miss_rate": rate,
        "seed": args.seed,
        "strategy": args.strategy,
        "cpu_replicas": args.cpu_replicas,
        "replicas": int(strategy.num_replicas_in_sync),
        "workers": n_workers,
        "params": {**model_parameters(args.model), **params},
        "training": {**training, "steps_per_execution": steps_per_execution},
        "derived": {"steps_per_epoch": steps_per_epoch, "task": model_task(args.model), "metric": metric_name},
        "data": {
            "train_rows": int(n_train),
            "held_out_rows": int(len(data.x_val)),
            "example_shape": [int(s) for s in data.x_train.shape[1:]],
            "model_example_shape": [int(s) for s in model_shape],
            "held_out_missing_entries": int((data.m_val == 0).sum()),
        },
        "logdir": logdir,
        "export": args.export,
        "command": "python -m training.train " + " ".join(argv),
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    config_path = os.path.join(logdir, "config.json")
    if chief:
        _check_resume(config_path, config, backup_dir)
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)

    x_val_incomplete = np.where(data.m_val == 1, data.x_val, np.nan)

    if classify:

        def score(current=estimator):
            return float(np.mean(current.predict(x_val_incomplete) == data.classes[data.y_val]))

    else:

        def score(current=estimator):
            return held_out_rmse(data, current.transform(x_val_incomplete))

    images = None
    if data.image_shape is not None and not classify:
        images = ImputationImages(
            os.path.join(logdir, "images"), data.x_val[:8], data.m_val[:8], estimator.transform, value_range=data.value_range
        )
    callbacks = make_callbacks(
        score=score,
        epochs=training["epochs"],
        logdir=logdir,
        backup_dir=backup_dir,
        chief=chief,
        early_stopping=training["early_stopping"],
        images=images,
        metric=metric_name,
    )
    shape_text = "x".join(str(s) for s in data.x_train.shape[1:])
    print(
        f"training {args.model} on {args.dataset} ({n_train} examples of {shape_text}, {len(data.x_val)} held out; "
        f"{args.mechanism} {'eq. 26 as written' if rate is None else f'{rate:g}'}) for {training['epochs']} epochs of "
        f"{steps_per_epoch} steps, global batch {batch_size}, strategy {args.strategy} ({strategy.num_replicas_in_sync} replica(s)"
        + (f", {task_type} {task_id} of {n_workers} workers" if n_workers > 1 else "")
        + f"); logdir {logdir}",
        flush=True,
    )
    y_train = data.y_train if classify else None

    def training_batches(x_, mask_, y_=None):
        return shard_dataset(make_dataset(x_, mask_, batch_size=batch_size, seed=args.seed, y=y_))

    start = time.perf_counter()
    history = model.fit_rounds(
        x_scaled,
        m_scaled,
        y_train,
        make_dataset=training_batches,
        epochs=training["epochs"],
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        callbacks=callbacks,
        verbose=1 if args.progress else 0,
    )
    seconds = time.perf_counter() - start
    model.save_weights(os.path.join(own_dir, "final.weights.h5"))
    summary = {"history": history.history, "epochs_run": list(history.epoch), "seconds": seconds, "logdir": logdir, "chief": chief}
    if not chief:
        print(f"worker {task_id}: done in {seconds:.1f} s; final weights in {own_dir}", flush=True)
        return summary

    last = float(history.history[metric_name][-1]) if history.history.get(metric_name) else float(score())
    best_path = os.path.join(logdir, "best.keras")
    if os.path.exists(best_path):  # the best model, as a plain (undistributed) model for scoring and export
        estimator.model_ = keras.models.load_model(best_path, compile=False)
    best = float(score(estimator))
    if training["early_stopping"] and model.stop_training:
        print(f"stopped early after epoch {history.epoch[-1] + 1}: no better {metric_name} for {training['early_stopping']} epochs", flush=True)
    if classify:
        baseline = float(np.mean(data.y_val == np.bincount(data.y_train).argmax()))
        summary.update(val_accuracy=best, last_val_accuracy=last, majority_class_accuracy=baseline, best_model=best_path)
        print(f"held-out accuracy {best:.4f} (best model; last epoch {last:.4f}); majority class {baseline:.4f}; {seconds:.1f} s", flush=True)
        worse = best <= baseline
        what = f"held-out accuracy {best:.4f} is no better than always predicting the majority class ({baseline:.4f})"
    else:
        observed = np.where(data.m_train == 1, data.x_train, np.nan)
        means = np.nanmean(observed.reshape(n_train, -1), axis=0).reshape(data.x_train.shape[1:])
        baseline = held_out_rmse(data, np.where(data.m_val == 1, data.x_val, means))
        summary.update(val_rmse=best, last_val_rmse=last, mean_imputation_rmse=baseline, best_model=best_path)
        print(f"held-out RMSE {best:.4f} (best model; last epoch {last:.4f}); mean imputation {baseline:.4f}; {seconds:.1f} s", flush=True)
        worse = best >= baseline
        what = f"held-out RMSE {best:.4f} is no better than mean imputation's {baseline:.4f}"
    summary["worse_than_baseline"] = bool(worse)
    if worse:
        print(f"warning: {what}: train longer or change the configuration", file=sys.stderr, flush=True)
    if args.export:
        if worse and not args.force:
            raise ConfigError(f"not exported: {what} (--force exports it anyway)")
        from serving.export import export

        name = args.export_name or f"{args.model}_{args.dataset}"
        path = export(estimator, args.export, name)  # the next free version
        summary["export_path"] = path
        print(f"exported to {path}", flush=True)
    return summary


def main(argv=None, prog="python -m training.train"):
    argv = sys.argv[1:] if argv is None else list(argv)
    from keraszoo.console import one_line_errors, quiet_tensorflow

    quiet_tensorflow(verbose="--verbose" in argv)  # before the help text lists the models (which imports TensorFlow)
    args = build_parser(prog).parse_args(argv)
    if args.progress is None:
        args.progress = sys.stdout.isatty()
    with one_line_errors(prog.replace("python -m training.", ""), verbose=args.verbose):
        try:
            check_arguments(args)
            return run(args, argv)
        except ConfigError as err:
            raise SystemExit(f"train: {err}") from None


if __name__ == "__main__":
    main()
