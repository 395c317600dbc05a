"""Train any registered deep model with `model.fit`: TensorBoard, checkpoints, held-out RMSE, 1 CPU to many GPUs/machines.

    python -m training.train --model gain --dataset spam --mechanism mcar --miss-rate 0.2 \\
        --epochs 50 --batch-size 128 --seed 0 --strategy default --logdir runs/gain_spam \\
        --export saved_models/serving [--config FILE] [--set KEY=VALUE ...] [--early-stopping 10]
    keraszoo train ...                       # the same command
    tensorboard --logdir runs/gain_spam      # losses, learning rates, held-out RMSE (and images)

Configuration (every key is a model constructor parameter or a training key, `TRAINING_DEFAULTS`),
later sources overriding earlier ones:

1. the model's constructor defaults and `TRAINING_DEFAULTS`;
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
    "learning_rate": 1e-3,
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
        return {**data.get("params", {}), **data.get("training", {})}
    return data


def model_config_path(model, configs_dir=None):
    return os.path.join(configs_dir or CONFIGS_DIR, f"{model}.json")


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
    training = {**TRAINING_DEFAULTS, **{k: v for k, v in merged.items() if k in TRAINING_DEFAULTS}}
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
    lr = training["learning_rate"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 or not math.isfinite(lr):
        raise ConfigError(f"learning_rate must be a positive number, got {lr!r}")
    training["learning_rate"] = float(lr)
    fraction = training["val_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1), got {fraction!r}")
    training["val_fraction"] = float(fraction)
    return training


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------
class Data:
    """Training and held-out rows (raw scale, complete truth) with their masks (1 = observed)."""

    def __init__(self, x_train, m_train, x_val, m_val, image_shape=None, value_range=None):
        self.x_train, self.m_train, self.x_val, self.m_val = x_train, m_train, x_val, m_val
        self.image_shape = image_shape
        self.value_range = value_range


def prepare_data(dataset, mechanism, miss_rate, seed, val_fraction=0.2, max_rows=None, data_dir=None):
    """Load `dataset`, simulate missingness on every row, hold out a seeded `val_fraction` of rows."""
    from keraszoo.data import load_dataset, simulate
    from keraszoo.data.missingness import IMAGE_MECHANISMS

    loaded = load_dataset(dataset, data_dir=data_dir)
    x = loaded.numeric_array()
    images = loaded.images
    image_shape = None
    if images is not None and int(np.prod(images.shape[1:])) == x.shape[1]:
        image_shape = tuple(int(s) for s in images.shape[1:])
    if mechanism in IMAGE_MECHANISMS and image_shape is None:
        raise ConfigError(f"mechanism {mechanism!r} is for image data sets; {dataset!r} is a table: use mcar, mar or mnar")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"data set {dataset!r} has missing or non-finite values in its numeric columns: training needs a complete truth")
    rng = np.random.default_rng(seed)
    if max_rows is not None and max_rows < len(x):
        x = x[np.sort(rng.permutation(len(x))[:max_rows])]
    if mechanism in IMAGE_MECHANISMS:
        mask = simulate(x.reshape((len(x),) + image_shape), mechanism, miss_rate, seed=seed).reshape(x.shape)
    else:
        mask = simulate(x, mechanism, miss_rate, seed=seed)
    order = rng.permutation(len(x))
    n_val = int(round(val_fraction * len(x)))
    if n_val < 1 or n_val >= len(x):
        raise ConfigError(f"val_fraction {val_fraction} of {len(x)} rows leaves no training or no held-out row")
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    if not (mask[val] == 0).any():
        raise ConfigError("the held-out rows have no simulated-missing entry to score: raise --miss-rate or --val-fraction")
    value_range = (float(x.min()), float(x.max())) if image_shape else None
    return Data(x[train], mask[train], x[val], mask[val], image_shape, value_range)


# --------------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registered deep model (keraszoo models)")
    parser.add_argument("--dataset", required=True, help="data set name (keraszoo datasets)")
    parser.add_argument("--mechanism", default="mcar", help="mcar, mar or mnar (image data sets also square, trapezoid, noise)")
    parser.add_argument("--miss-rate", type=float, default=0.2, help="fraction of entries made missing, in (0, 1)")
    parser.add_argument("--epochs", type=int, help=f"passes over the training rows (default {TRAINING_DEFAULTS['epochs']})")
    parser.add_argument("--batch-size", type=int, help=f"global batch size (default {TRAINING_DEFAULTS['batch_size']})")
    parser.add_argument("--learning-rate", type=float, help="learning rate of the model's default optimizers")
    parser.add_argument("--seed", type=int, default=0, help="seeds the mask, the split, the shuffling and the model")
    parser.add_argument("--strategy", default="default", help="default, mirrored or multiworker (TF_CONFIG)")
    parser.add_argument("--cpu-replicas", type=int, help="mirrored only: split the CPU into N logical devices")
    parser.add_argument("--logdir", help="TensorBoard logs, config, backups, checkpoints (default runs/<model>_<dataset>)")
    parser.add_argument("--export", metavar="DIR", help="export the best model for TF Serving under DIR")
    parser.add_argument("--export-name", help="exported model name (default <model>_<dataset>)")
    parser.add_argument("--config", metavar="FILE", help="JSON file of model and training keys")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key")
    parser.add_argument("--early-stopping", type=int, metavar="PATIENCE", help="stop after PATIENCE epochs without a better val_rmse")
    parser.add_argument("--val-fraction", type=float, help="fraction of rows held out (default 0.2)")
    parser.add_argument("--max-rows", type=int, help="use a seeded random subset of this many rows")
    parser.add_argument("--data-dir", help="data directory (default $KERASZOO_DATA_DIR)")
    return parser


def check_arguments(args):
    """Names and ranges of the command line, before anything heavy happens. Raises ConfigError."""
    from keraszoo.data import list_datasets
    from keraszoo.data.missingness import MECHANISMS
    from keraszoo.distribute import STRATEGIES
    from keraszoo.registry import list_models

    deep = list_models("deep")
    if args.model not in deep:
        what = "is not a deep model (it has no model.fit training)" if args.model in list_models() else "is not a registered model"
        raise ConfigError(f"{args.model!r} {what}; deep models: {', '.join(deep)}")
    if args.dataset not in list_datasets():
        raise ConfigError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(list_datasets())}")
    if args.mechanism not in MECHANISMS:
        raise ConfigError(f"unknown mechanism {args.mechanism!r}; valid mechanisms: {', '.join(MECHANISMS)}")
    if not (0.0 < args.miss_rate < 1.0):
        raise ConfigError(f"--miss-rate must be in (0, 1) (the fraction of entries made missing), got {args.miss_rate}")
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


def make_callbacks(*, score, epochs, logdir, backup_dir, chief, early_stopping=None, images=None):
    """The callbacks of a run, in the order they must run (see training/callbacks.py)."""
    import keras

    from training import callbacks as cb

    callbacks = [cb.HeldOutRMSE(score), cb.OptimizerLearningRates()]
    callbacks.append(keras.callbacks.BackupAndRestore(backup_dir, double_checkpoint=True))
    if chief:
        # Resuming: the best model so far stays unless an epoch beats it (ModelCheckpoint would restart from +inf).
        record = os.path.join(logdir, "best.json")
        best = cb.read_best(record) if _has_backup(backup_dir) else None
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                os.path.join(logdir, "best.keras"), monitor="val_rmse", mode="min", save_best_only=True, initial_value_threshold=best
            )
        )
        callbacks.append(cb.BestRecord(record, best=best))
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_rmse", mode="min", patience=early_stopping))
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

    from keraszoo import metrics
    from keraszoo.data import MinMaxScaler
    from keraszoo.models.base import make_dataset
    from keraszoo.registry import get_model, model_parameters
    from keraszoo.sklearn import ZooImputer
    from training.callbacks import ImputationImages

    if "seed" in model_parameters(args.model):
        params.setdefault("seed", args.seed)
    try:
        data = prepare_data(
            args.dataset, args.mechanism, args.miss_rate, args.seed, training["val_fraction"], training["max_rows"], args.data_dir
        )
        scaler = MinMaxScaler().fit(data.x_train, data.m_train)
    except (ValueError, FileNotFoundError) as err:  # bad rates for a mechanism, no observed value, data not found
        raise ConfigError(str(err)) from None
    n_train, n_features = data.x_train.shape
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
            model.build((None, n_features))
            steps_per_execution = training["steps_per_execution"] or min(model.default_steps_per_execution, steps_per_pass)
            limit = steps_per_execution_limit(strategy)
            if limit is not None and steps_per_execution > limit:
                if training["steps_per_execution"]:
                    print(f"steps_per_execution {steps_per_execution} lowered to {limit} (several replicas: keraszoo.distribute)")
                steps_per_execution = limit
            model.compile_default(training["learning_rate"], steps_per_execution=steps_per_execution)
            model.build_optimizers()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model {args.model!r}: {err}") from None
    steps_per_epoch = -(-steps_per_pass // steps_per_execution) * steps_per_execution

    config = {
        "model": args.model,
        "dataset": args.dataset,
        "mechanism": args.mechanism,
        "miss_rate": args.miss_rate,
        "seed": args.seed,
        "strategy": args.strategy,
        "cpu_replicas": args.cpu_replicas,
        "replicas": int(strategy.num_replicas_in_sync),
        "workers": n_workers,
        "params": {**model_parameters(args.model), **params},
        "training": {**training, "steps_per_execution": steps_per_execution, "steps_per_epoch": steps_per_epoch},
        "data": {
            "train_rows": int(n_train),
            "held_out_rows": int(len(data.x_val)),
            "features": int(n_features),
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

    imputer = ZooImputer(args.model, **params)  # fitted by hand: the scaler and model trained here
    imputer.n_features_in_ = n_features
    imputer.scaler_ = scaler
    imputer.constant_columns_ = scaler.data_max_ == scaler.data_min_
    imputer.model_ = model
    x_val_incomplete = np.where(data.m_val == 1, data.x_val, np.nan)

    def score(current=imputer):
        return metrics.rmse(data.x_val, current.transform(x_val_incomplete), data.m_val)

    images = None
    if data.image_shape is not None and len(data.image_shape) == 2:
        shape = (-1,) + data.image_shape
        images = ImputationImages(
            os.path.join(logdir, "images"),
            data.x_val[:8].reshape(shape),
            data.m_val[:8].reshape(shape),
            imputer.transform,
            value_range=data.value_range,
        )
    callbacks = make_callbacks(
        score=score,
        epochs=training["epochs"],
        logdir=logdir,
        backup_dir=backup_dir,
        chief=chief,
        early_stopping=training["early_stopping"],
        images=images,
    )
    print(
        f"training {args.model} on {args.dataset} ({n_train} rows x {n_features} features, {len(data.x_val)} held out; "
        f"{args.mechanism} {args.miss_rate:g}) for {training['epochs']} epochs of {steps_per_epoch} steps, global batch "
        f"{batch_size}, strategy {args.strategy} ({strategy.num_replicas_in_sync} replica(s)"
        + (f", {task_type} {task_id} of {n_workers} workers" if n_workers > 1 else "")
        + f"); logdir {logdir}",
        flush=True,
    )
    x_scaled = np.where(data.m_train == 1, scaler.transform(data.x_train), 0.0)
    dataset = shard_dataset(make_dataset(x_scaled, data.m_train, batch_size=batch_size, seed=args.seed))
    start = time.perf_counter()
    history = model.fit(
        dataset, epochs=training["epochs"], steps_per_epoch=steps_per_epoch, shuffle=False, verbose=0, callbacks=callbacks
    )
    seconds = time.perf_counter() - start
    model.save_weights(os.path.join(own_dir, "final.weights.h5"))
    summary = {"history": history.history, "epochs_run": list(history.epoch), "seconds": seconds, "logdir": logdir, "chief": chief}
    if not chief:
        print(f"worker {task_id}: done in {seconds:.1f} s; final weights in {own_dir}", flush=True)
        return summary

    last_rmse = float(history.history["val_rmse"][-1]) if history.history.get("val_rmse") else float(score())
    best_path = os.path.join(logdir, "best.keras")
    if os.path.exists(best_path):  # the best model, as a plain (undistributed) model for scoring and export
        imputer.model_ = keras.models.load_model(best_path, compile=False)
    best_rmse = float(score(imputer))
    observed = np.where(data.m_train == 1, data.x_train, np.nan)
    means = np.nanmean(observed, axis=0)
    mean_rmse = metrics.rmse(data.x_val, np.where(data.m_val == 1, data.x_val, means), data.m_val)
    summary.update(val_rmse=best_rmse, last_val_rmse=last_rmse, mean_imputation_rmse=mean_rmse, best_model=best_path)
    if training["early_stopping"] and model.stop_training:
        print(f"stopped early after epoch {history.epoch[-1] + 1}: no better val_rmse for {training['early_stopping']} epochs", flush=True)
    print(
        f"held-out RMSE {best_rmse:.4f} (best model; last epoch {last_rmse:.4f}); mean imputation {mean_rmse:.4f}; "
        f"{seconds:.1f} s",
        flush=True,
    )
    if args.export:
        from serving.export import export

        name = args.export_name or f"{args.model}_{args.dataset}"
        path = export(imputer, args.export, name)  # the next free version
        summary["export_path"] = path
        print(f"exported to {path}", flush=True)
    return summary


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        return run(args, argv)
    except ConfigError as err:
        raise SystemExit(f"train: {err}") from None


if __name__ == "__main__":
    main()
