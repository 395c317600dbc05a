"""Keras callbacks that make zoo models watchable in TensorBoard like any Keras model.

Order matters: Keras calls callbacks in list order with ONE shared `logs` dict per epoch, so the
callbacks that add values (`HeldOutRMSE`, `OptimizerLearningRates`) must come before those that read
them (`ZooTensorBoard`, `keras.callbacks.ModelCheckpoint` / `EarlyStopping` on ``val_rmse``, the
History `fit` returns, `EpochPrinter`). `training.train.make_callbacks` builds the list in that order.

What TensorBoard then shows per epoch (`EventAccumulator(...).Tensors(tag)`, Keras 3 writes scalars
as tensors):

* ``<logdir>/train``: ``epoch_<name>`` for every value the model's `train_step` returns (GAIN:
  ``epoch_d_loss``, ``epoch_g_loss``, ``epoch_mse_observed``) and ``epoch_<attribute>_learning_rate``
  for every optimizer the model really trains with (GAIN: ``epoch_g_optimizer_learning_rate``,
  ``epoch_d_optimizer_learning_rate``), found through `model.optimizer_networks`;
* ``<logdir>/validation``: ``epoch_rmse``, the held-out RMSE (``val_rmse`` in the logs: Keras's
  TensorBoard puts ``val_*`` values in the validation run without the prefix);
* ``<logdir>/images`` (data sets with images): ``imputation``, a grid with one row per held-out image:
  truth | mask (white = observed) | imputed.

Keras's own TensorBoard also logs ``learning_rate`` of `model.optimizer`. For the zoo's models that is
the placeholder optimizer `compile` creates and no `train_step` uses (GAIN trains with `g_optimizer`
and `d_optimizer`), so its constant value would be misleading: `ZooTensorBoard` leaves it out.
"""
import json
import time

import keras
import numpy as np


def named_optimizers(model):
    """[(name, optimizer)] for the optimizers `model` trains with, named by the model attribute holding them.

    GAIN gives [("g_optimizer", ...), ("d_optimizer", ...)] (its `optimizer_networks`).
    """
    return [(name, optimizer) for name, optimizer, _ in model.optimizers_and_variables()]


def _scalar(value):
    value = getattr(value, "value", value)  # a Keras variable: read its (possibly distributed) value
    return float(np.asarray(keras.ops.convert_to_numpy(value)))


class HeldOutRMSE(keras.callbacks.Callback):
    """Adds ``logs[name]`` (default ``val_rmse``; ``val_accuracy`` for classifiers) = `score()` at the end of every epoch.

    `score` is a function of no argument returning the held-out RMSE of the model as it is now
    (`training.train` imputes the validation rows and scores their simulated-missing entries with
    `keraszoo.metrics.rmse`). Put this callback before any callback that reads the value.
    """

    def __init__(self, score, name="val_rmse"):
        super().__init__()
        self.score = score
        self.name = name

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[self.name] = float(self.score())


class BestRecord(keras.callbacks.Callback):
    """Writes `path` (JSON: epoch, value) whenever ``logs[monitor]`` reaches a new best (minimum, or maximum with mode="max").

    Put right after the `keras.callbacks.ModelCheckpoint(save_best_only=True)` it describes. A run
    resumed from a backup starts ModelCheckpoint with ``initial_value_threshold`` = the recorded
    value (see `read_best`), so a worse epoch after the resume does not replace the best model.
    """

    def __init__(self, path, monitor="val_rmse", best=None, mode="min"):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.sign = -1.0 if mode == "max" else 1.0
        self.best = self.sign * np.inf if best is None else float(best)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and self.sign * value < self.sign * self.best:
            self.best = float(value)
            with open(self.path, "w") as f:
                json.dump({"epoch": epoch + 1, self.monitor: self.best}, f)


def read_best(path, monitor="val_rmse"):
    """The value a `BestRecord` wrote to `path`, or None."""
    try:
        with open(path) as f:
            return float(json.load(f)[monitor])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class OptimizerLearningRates(keras.callbacks.Callback):
    """Adds ``logs["<attribute>_learning_rate"]`` for every optimizer the model trains with (see `named_optimizers`)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for name, optimizer in named_optimizers(self.model):
            logs[f"{name}_learning_rate"] = _scalar(optimizer.learning_rate)


class ZooTensorBoard(keras.callbacks.TensorBoard):
    """`keras.callbacks.TensorBoard` without the ``learning_rate`` of `model.optimizer`.

    That optimizer is the placeholder Keras's `compile` creates; the zoo's models train with their
    own optimizers, whose learning rates `OptimizerLearningRates` adds to the logs (and so to TensorBoard).
    `_collect_learning_rate` is Keras's hook for it: if a later Keras renamed it, this override would
    simply stop applying and TensorBoard would show one extra, constant curve.
    """

    def _collect_learning_rate(self, logs):
        return logs


class ImputationImages(keras.callbacks.Callback):
    """Writes an image grid per epoch: one row per held-out image, truth | mask | imputed.

    * `truth`: raw images of held-out rows (complete), [n, H, W] or [n, H, W, C] (C = 1 or 3);
    * `mask`: the same shape, 1 = observed;
    * `impute`: function completing the images with NaN at missing entries (raw scale): it gets them
      as [n, H, W, C] when `truth` has channels, and flattened to rows [n, H*W] when it has not;
    * `value_range`: (low, high) of raw pixel values, mapped to black and white.

    Written with `tf.summary.image` (tag `tag`) to `logdir` (its own run in TensorBoard).
    """

    def __init__(self, logdir, truth, mask, impute, value_range=None, max_images=8, tag="imputation", min_size=64):
        super().__init__()
        truth = np.asarray(truth, dtype=np.float64)[:max_images]
        if truth.ndim not in (3, 4) or (truth.ndim == 4 and truth.shape[-1] not in (1, 3)):
            raise ValueError(f"ImputationImages expects images [n, H, W] or [n, H, W, C] with C 1 or 3, got shape {truth.shape}")
        self.channels_given = truth.ndim == 4
        self.logdir = logdir
        self.truth = truth if self.channels_given else truth[..., None]
        self.mask = np.asarray(mask, dtype=np.float64)[: len(truth)].reshape(self.truth.shape)
        self.impute = impute
        self.value_range = value_range or (float(truth.min()), float(truth.max()))
        self.tag = tag
        self.scale = max(1, -(-int(min_size) // truth.shape[1]))  # small images (8x8 digits) are enlarged
        self._writer = None

    def grid(self):
        """The grid as a float array [1, rows, columns, C] in [0, 1]: n rows of 3 panels, grey lines between.

        Each panel is the H x W image enlarged `scale` times (nearest neighbour).
        """
        n, h, w, c = self.truth.shape
        incomplete = np.where(self.mask == 1, self.truth, np.nan)
        given = incomplete if self.channels_given else incomplete.reshape(n, h * w)
        imputed = np.asarray(self.impute(given), dtype=np.float64).reshape(n, h, w, c)
        low, high = self.value_range
        span = (high - low) or 1.0

        def enlarge(panel):
            return np.kron(panel, np.ones((self.scale, self.scale, 1)))

        h, w = h * self.scale, w * self.scale
        rows = []
        for truth, mask, filled in zip(self.truth, self.mask, imputed):
            panels = [enlarge((truth - low) / span), enlarge(mask), enlarge((filled - low) / span)]
            row = panels[0]
            for panel in panels[1:]:
                row = np.concatenate([row, np.full((h, 1, c), 0.5), panel], axis=1)
            rows.append(row)
        image = rows[0]
        for row in rows[1:]:
            image = np.concatenate([image, np.full((1, image.shape[1], c), 0.5), row], axis=0)
        return np.clip(image, 0.0, 1.0)[None].astype(np.float32)

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.logdir)
        with self._writer.as_default():
            tf.summary.image(self.tag, self.grid(), step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EpochPrinter(keras.callbacks.Callback):
    """Prints one line per epoch (every logged value) and, when `fit` resumes from a backup, where it resumes.

    Put it last, so the line appears once the epoch's backup and checkpoint are written (a test kills
    a run when it sees the line). `optimizers` says the optimizers' step counts at a resume (they
    come back from the backup with the weights).
    """

    def __init__(self, epochs, print_fn=print):
        super().__init__()
        self.epochs = epochs
        self.print_fn = print_fn
        self._first = True
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and epoch > 0:
            steps = ", ".join(f"{name} {int(_scalar(opt.iterations))}" for name, opt in named_optimizers(self.model))
            self.print_fn(f"resuming from the backup at epoch {epoch} (optimizer steps: {steps})")
        self._first = False
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - (self._start or time.perf_counter())
        values = "  ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items() if not k.endswith("_learning_rate"))
        self.print_fn(f"epoch {epoch + 1}/{self.epochs}  {values}  ({seconds:.2f} s)")
