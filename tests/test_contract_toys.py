"""Two models defined only in this file — an image imputer and a classifier of incomplete rows — are
registered, pass every contract check, train through `training.train`, export, and serve through
`serving.server`, with no edit anywhere else. This is what adding a model family costs."""
import io
import os
from contextlib import redirect_stdout

import keras
import numpy as np
import pytest
import tensorflow as tf

from keraszoo import contract, registry
from keraszoo.models.base import DeepClassifier, DeepImputer, global_sum, merge_histories


class ToyImageImputer(DeepImputer):
    """Two 3x3 convolutions over (image with noise at missing pixels, mask); learns by hiding observed pixels.
    Trains in `rounds` rounds, re-imputing the training images between them (EMFlow's and MCFlow's shape)."""

    example_kinds = ("image",)
    generative = True
    optimizer_networks = {"optimizer_net": "net"}
    default_learning_rates = {"optimizer_net": 3e-3}

    def __init__(self, filters=8, noise_scale=0.2, rounds=1, seed=0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.filters = int(filters)
        self.noise_scale = float(noise_scale)
        self.rounds = int(rounds)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build_networks(self, example_shape):
        height, width, channels = example_shape
        self.net = keras.Sequential(
            [
                keras.Input((height, width, 2 * channels)),
                keras.layers.Conv2D(self.filters, 3, padding="same", activation="relu"),
                keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid"),
            ],
            name="net",
        )

    @property
    def metrics(self):
        return [self.loss_tracker]

    def complete(self, x, mask, noise, training=False):
        return self.net(tf.concat([mask * x + (1.0 - mask) * noise, mask], axis=-1), training=training)

    def impute_batch(self, x, mask):
        return self.complete(x, mask, tf.fill(tf.shape(x), 0.5 * self.noise_scale))

    def sample_batch(self, x, mask, n):
        draw = lambda _: self.complete(x, mask, self.random_uniform(tf.shape(x), 0.0, self.noise_scale))  # noqa: E731
        return tf.map_fn(draw, tf.range(n), fn_output_signature=x.dtype)

    def fit_rounds(self, x, mask, y=None, *, make_dataset, epochs, steps_per_epoch, batch_size=None, callbacks=None, verbose=0):
        ends = sorted({max(1, round(epochs * (r + 1) / self.rounds)) for r in range(self.rounds)})
        histories, start = [], 0
        for end in ends:
            completed = np.asarray(self.impute(x, mask)) if histories else x  # re-impute between rounds
            history = self.fit(make_dataset(completed, mask), initial_epoch=start, epochs=end, steps_per_epoch=steps_per_epoch,
                               shuffle=False, verbose=verbose, callbacks=callbacks)
            history.history["round"] = [len(histories)] * len(history.epoch)
            histories.append(history)
            start = end
        return merge_histories(histories)

    def train_step(self, data):
        x, observed = data
        shown = observed * tf.cast(self.random_uniform(tf.shape(observed)) > 0.3, observed.dtype)
        hidden = observed - shown
        count = tf.maximum(global_sum(tf.reduce_sum(hidden)), 1.0)
        with tf.GradientTape() as tape:
            completed = self.complete(x, shown, self.random_uniform(tf.shape(x), 0.0, self.noise_scale), training=True)
            loss = tf.reduce_sum(hidden * tf.square(completed - x)) / count
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.optimizer_net.apply_gradients(zip(grads, self.net.trainable_variables))
        self.loss_tracker.update_state(global_sum(loss))
        return {"loss": self.loss_tracker.result()}

    @classmethod
    def contract_example(cls):
        from keraszoo.testing import image_example

        x, mask = image_example()
        return {"x": x, "mask": mask, "params": {"filters": 5, "noise_scale": 0.3, "rounds": 2, "seed": 2}, "fit": {"iterations": 30, "batch_size": 16}}

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "noise_scale": self.noise_scale, "rounds": self.rounds}


class ToyClassifier(DeepClassifier):
    """An MLP on (zero-filled row, mask) with a softmax: a classifier of incomplete rows."""

    optimizer_networks = {"optimizer_net": "net"}
    default_learning_rates = {"optimizer_net": 1e-2}

    def __init__(self, hidden=16, n_classes=None, seed=0, **kwargs):
        super().__init__(n_classes=n_classes, seed=seed, **kwargs)
        self.hidden = int(hidden)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def build_networks(self, example_shape):
        (n_features,) = example_shape
        self.net = keras.Sequential(
            [keras.Input((2 * n_features,)), keras.layers.Dense(self.hidden, activation="relu"), keras.layers.Dense(self.n_classes)],
            name="net",
        )

    @property
    def metrics(self):
        return [self.loss_tracker]

    def predict_proba_batch(self, x, mask):
        return tf.nn.softmax(self.net(tf.concat([x, mask], axis=1)))

    def train_step(self, data):
        x, mask, y = data
        rows = tf.cast(global_sum(tf.shape(y)[0]), tf.float32)
        with tf.GradientTape() as tape:
            logits = self.net(tf.concat([x, mask], axis=1), training=True)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)) / rows
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.optimizer_net.apply_gradients(zip(grads, self.net.trainable_variables))
        self.loss_tracker.update_state(global_sum(loss))
        return {"loss": self.loss_tracker.result()}

    @classmethod
    def contract_example(cls):
        from sklearn.datasets import load_breast_cancer

        from keraszoo.testing import table_example

        x, mask = table_example()
        y = load_breast_cancer().target[: len(x)]
        return {"x": x, "mask": mask, "y": y, "params": {"hidden": 7, "seed": 4}, "fit": {"iterations": 30, "batch_size": 16}}

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


TOYS = {"toy_image_imputer": ToyImageImputer, "toy_classifier": ToyClassifier}


@pytest.fixture(scope="module", autouse=True)
def registered():
    for name, cls in TOYS.items():
        registry.register_model(name)(cls)
    yield
    for name in TOYS:
        registry.unregister_model(name)
        contract.forget(name)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(TOYS))
def test_toys_pass_every_contract_check(name, check):
    check(name)


def test_toys_export_and_load_in_a_fresh_process(tmp_path):
    contract.check_exports(sorted(TOYS), str(tmp_path))


def test_toys_are_listed_by_task():
    assert "toy_classifier" in registry.list_models(task="classify")
    assert "toy_classifier" not in registry.list_models(task="impute")
    assert "toy_image_imputer" in registry.list_models("deep", task="impute")


def _train(argv):
    from training import train

    out = io.StringIO()
    with redirect_stdout(out):
        summary = train.main(argv)
    return summary, out.getvalue()


@pytest.fixture(scope="module")
def trained_toys(tmp_path_factory):
    """Both toys trained by `training.train` on real data and exported under one base path."""
    base = tmp_path_factory.mktemp("toys")
    export_dir = str(base / "serving")
    image = _train(
        ["--model", "toy_image_imputer", "--dataset", "digits", "--mechanism", "mcar", "--epochs", "8", "--batch-size", "32",
         "--set", "rounds=2", "--logdir", str(base / "image"), "--export", export_dir]
    )
    classifier = _train(
        ["--model", "toy_classifier", "--dataset", "breast", "--epochs", "4", "--batch-size", "16",
         "--logdir", str(base / "classifier"), "--export", export_dir]
    )
    return image, classifier, export_dir


def test_image_imputer_trains_through_training_train_on_images(trained_toys):
    (summary, out), _, _ = trained_toys
    assert "1438 examples of 8x8x1" in out, out  # digits as [rows, 8, 8, 1], not flattened
    assert summary["val_rmse"] < summary["mean_imputation_rmse"], summary  # it learns: beats the mean on real images
    assert summary["export_path"].endswith(os.path.join("toy_image_imputer_digits", "1"))


def test_rounds_run_through_training_train_with_one_history_and_tensorboard(trained_toys):
    """`rounds=2` (a constructor parameter, passed by --set) trains epochs 0-3 then 4-7 by `fit_rounds`;
    the history, TensorBoard and the config the run writes see all 8 epochs as one run."""
    import json

    from training.train_test import tensors

    (summary, out), _, _ = trained_toys
    assert summary["epochs_run"] == list(range(8)), summary["epochs_run"]
    assert summary["history"]["round"] == [0] * 4 + [1] * 4, summary["history"]
    assert len(summary["history"]["loss"]) == 8 and len(summary["history"]["val_rmse"]) == 8
    logged = tensors(summary["logdir"], "train")
    assert len(logged["epoch_loss"]) == 8, {k: len(v) for k, v in logged.items()}
    with open(os.path.join(summary["logdir"], "config.json")) as f:
        assert json.load(f)["params"]["rounds"] == 2


def test_classifier_trains_through_training_train_with_accuracy(trained_toys):
    _, (summary, out), _ = trained_toys
    assert "val_accuracy" in summary["history"] and "val_rmse" not in summary["history"]
    assert summary["val_accuracy"] > summary["majority_class_accuracy"] + 0.1, summary  # breast: ~0.63 for the majority
    assert "held-out accuracy" in out


def test_trained_toys_serve_over_grpc(trained_toys):
    from keraszoo.data import load_dataset
    from serving.client import ImputeClient
    from serving.server import start_subprocess

    _, _, export_dir = trained_toys
    images = load_dataset("digits").images[:5, :, :, None].astype(np.float32)
    images[:, 2:5, 2:5] = np.nan
    rows = load_dataset("breast").numeric_array()[:5].astype(np.float32)
    rows[:, ::3] = np.nan
    process, target, _ = start_subprocess(export_dir, rest=False)
    try:
        with ImputeClient(target) as client:
            imputed = client.impute("toy_image_imputer_digits", images)
            draws = client.multiple_imputation("toy_image_imputer_digits", images, n=3)
            proba = client.predict_proba("toy_classifier_breast", rows)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert imputed.shape == (5, 8, 8, 1) and np.isfinite(imputed).all()
    observed = ~np.isnan(images)
    np.testing.assert_array_equal(imputed[observed], images[observed])
    assert draws.shape == (3, 5, 8, 8, 1) and not np.array_equal(draws[0], draws[1])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_a_fitted_classifiers_get_params_are_the_ones_it_was_given():
    """scikit-learn's rule: fit learns n_classes from y but leaves the parameters as given (a clone of a
    fitted estimator must be the unfitted one)."""
    from sklearn.base import clone

    from keraszoo.sklearn import ZooClassifier

    example = ToyClassifier.contract_example()
    x = np.where(example["mask"] == 1, example["x"], np.nan)
    estimator = ZooClassifier("toy_classifier", hidden=5, iterations=5)
    before = estimator.get_params()
    estimator.fit(x, example["y"])
    assert estimator.get_params() == before and "n_classes" not in before
    assert estimator.model_.n_classes == 2 and clone(estimator).get_params() == before
