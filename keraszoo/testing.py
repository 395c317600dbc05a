"""Small helpers for the test suite (real tables that need no download, reference baselines, polling)."""
import os
import time

import numpy as np


def breast_mcar(rate=0.2, seed=0):
    """(truth, mask) for scikit-learn's breast-cancer table, min-max scaled, MCAR at `rate`; 1 = observed."""
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data
    truth = ((x - x.min(0)) / (x.max(0) - x.min(0))).astype(np.float32)
    mask = (np.random.default_rng(seed).random(truth.shape) >= rate).astype(np.float32)
    return truth, mask


def missing_rmse(truth, imputed, mask):
    """RMSE over the missing entries of already-scaled data."""
    missing = np.asarray(mask) == 0
    return float(np.sqrt(np.mean((np.asarray(truth)[missing] - np.asarray(imputed)[missing]) ** 2)))


def mean_imputation(truth, mask):
    """Column means of the observed entries at missing entries: the baseline every model must beat."""
    observed = np.where(mask == 1, truth, np.nan)
    return np.where(mask == 1, truth, np.nanmean(observed, axis=0))


def check_keeps_observed_and_draws_differ(model, truth, mask, rows=40, draws=3):
    """A trained generative imputer: observed entries come back unchanged (NaN at missing entries is fine),
    single imputation is deterministic, and `draws` imputations of the first `rows` rows differ."""
    poisoned = np.where(mask == 1, truth, np.nan)
    out = np.asarray(model.impute(poisoned, mask))
    np.testing.assert_array_equal(out[mask == 1], truth[mask == 1])
    np.testing.assert_array_equal(out, np.asarray(model.impute(truth, mask)))
    sampled = np.asarray(model.sample_imputations(truth[:rows], mask[:rows], draws))
    assert sampled.shape == (draws,) + truth[:rows].shape
    for draw in sampled:
        np.testing.assert_array_equal(draw[mask[:rows] == 1], truth[:rows][mask[:rows] == 1])
    assert np.std(sampled, axis=0)[mask[:rows] == 0].max() > 0


def check_exported_digit_images(export_path, draws=0):
    """An exported image model (fitted on 8x8 digits) imputes 4 digit images with a 4x4 hole: [4, 8, 8, 1]
    out, finite, observed pixels unchanged; with `draws`, `multiple_imputation` gives that many differing
    completions that keep the observed pixels too."""
    import tensorflow as tf

    from keraszoo.data import load_dataset

    loaded = tf.saved_model.load(export_path)
    images = load_dataset("digits").images[:4, :, :, None].astype(np.float32)
    images[:, 1:5, 2:6] = np.nan
    observed = ~np.isnan(images)
    imputed = loaded.signatures["serving_default"](x=tf.constant(images))["imputed"].numpy()
    assert imputed.shape == (4, 8, 8, 1) and np.isfinite(imputed).all()
    np.testing.assert_array_equal(imputed[observed], images[observed])
    if draws:
        completions = loaded.signatures["multiple_imputation"](x=tf.constant(images), n=tf.constant(draws))["imputations"].numpy()
        assert completions.shape == (draws, 4, 8, 8, 1) and not np.allclose(completions[0], completions[1])
        for completion in completions:
            np.testing.assert_array_equal(completion[observed], images[observed])


def table_example(rows=64, seed=0):
    """(x, mask) for contract checks: the first 5 columns of breast cancer (raw scale), 25% MCAR, every column observed."""
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:rows, :5].astype(np.float64)
    mask = (np.random.default_rng(seed).random(x.shape) > 0.25).astype(np.float64)
    mask[0] = 1.0
    return x, mask


def image_example(rows=48, seed=0):
    """(x, mask) for contract checks of image models: scikit-learn's 8x8 digits as [rows, 8, 8, 1], 25% MCAR."""
    from sklearn.datasets import load_digits

    x = load_digits().images[:rows, :, :, None].astype(np.float64)
    mask = (np.random.default_rng(seed).random(x.shape) > 0.25).astype(np.float64)
    mask[0] = 1.0
    return x, mask


def labelled_image_example(params, iterations=20, batch_size=16):
    """A classifier's `contract_example`: `image_example` with the digits' labels, `params`, a few steps."""
    from sklearn.datasets import load_digits

    x, mask = image_example()
    return {"x": x, "mask": mask, "y": load_digits().target[: len(x)], "params": params, "fit": {"iterations": iterations, "batch_size": batch_size}}


def wait_until(predicate, timeout=30.0, interval=0.05):
    """Poll `predicate` until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def check_every_weight_trains(model, shape, table, image_rows=32, steps=3, batch_size=16, labels=None):
    """Build `model` for examples of `shape`, train it `steps` steps by `fit` on `table` ((x, mask), for
    table shapes) or on 8x8 digit images scaled to [0, 1] (image shapes), and assert that every trainable
    weight moved (a weight a Keras model does not track, or no loss reaches, would not). A classifier gets
    `labels` classes (the digits' classes modulo `labels`). Returns (x, mask)."""
    from keraszoo.models.base import make_dataset

    if len(shape) == 3:
        x, mask = image_example(rows=image_rows)
        x = x / 16.0
    else:
        x, mask = table
    y = None
    if labels is not None:
        from sklearn.datasets import load_digits

        y = (load_digits().target[: len(x)] % labels).astype(np.int32)
    model.build((None,) + tuple(shape))
    model.compile_default()
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(make_dataset(x, mask, batch_size=batch_size, y=y), steps_per_epoch=steps, epochs=1, verbose=0)
    unchanged = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(w.numpy(), b)]
    assert not unchanged, unchanged
    return x, mask


def tensorboard_tensors(logdir, run, size=0):
    """{tag: [values per step]} of a TensorBoard run directory (Keras 3 writes scalars as tensors)."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(os.path.join(logdir, run), size_guidance={"tensors": size})
    accumulator.Reload()
    return {tag: [tf.make_ndarray(e.tensor_proto) for e in accumulator.Tensors(tag)] for tag in accumulator.Tags()["tensors"]}
