import numpy as np
import pytest

from keraszoo.models.base import make_dataset
from keraszoo.models.gamin import GAMIN
from keraszoo.testing import check_keeps_observed_and_draws_differ, image_example, mean_imputation, missing_rmse


@pytest.fixture(scope="module")
def trained(breast_mcar):
    truth, mask = breast_mcar
    model = GAMIN(seed=1)
    model.fit_arrays(truth, mask, iterations=1500)
    return model


def test_gamin_beats_mean_imputation_on_real_table(breast_mcar, trained):
    truth, mask = breast_mcar
    rmse = missing_rmse(truth, trained.impute(truth, mask), mask)
    mean_rmse = missing_rmse(truth, mean_imputation(truth, mask), mask)
    assert rmse < 0.75 * mean_rmse, (rmse, mean_rmse)


def test_single_imputation_is_the_confidence_weighted_mean_of_candidates(breast_mcar, trained):
    import tensorflow as tf

    truth, mask = breast_mcar
    x = tf.constant(np.where(mask[:20] == 1, truth[:20], 0.0))
    m = tf.constant(mask[:20])
    values, logits = trained.candidates_and_confidence(x, m, tf.fill(tf.shape(x), 0.5 * trained.noise_scale))
    assert values.shape == logits.shape == (20, 4, truth.shape[1])
    weights = tf.nn.softmax(logits, axis=1).numpy()
    expected = np.where(mask[:20] == 1, truth[:20], (weights * values.numpy()).sum(axis=1))
    np.testing.assert_allclose(trained.impute(truth[:20], mask[:20]).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert np.abs(values.numpy()[:, 0] - values.numpy()[:, 1]).max() > 1e-3  # the heads are different candidates


def test_observed_entries_unchanged_and_draws_differ(breast_mcar, trained):
    check_keeps_observed_and_draws_differ(trained, *breast_mcar)


def test_train_step_updates_every_weight(breast_mcar):
    x, m = breast_mcar
    model = GAMIN(candidates=3)
    model.build((None, x.shape[1]))
    model.compile_default()
    before = [w.numpy().copy() for w in model.trainable_weights]
    logs = model.train_step(next(iter(make_dataset(x, m, 64))))
    assert set(logs) == {"d_loss", "g_loss", "confidence_loss", "mse_observed", "mse_hidden", "confidence_accuracy"}
    assert all(np.isfinite(float(v)) for v in logs.values())
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]


def test_gamin_learns_digit_images_flattened():
    """Table-only: 8x8 digits as 64-column rows (as `training.train` passes images to it) beat the mean."""
    x, m = image_example(rows=512, seed=1)
    x, m = x.reshape(len(x), -1) / 16.0, m.reshape(len(m), -1)
    model = GAMIN(seed=0)
    model.fit_arrays(x, m, iterations=1000, batch_size=64)
    assert missing_rmse(x, model.impute(x, m), m) < 0.9 * missing_rmse(x, mean_imputation(x, m), m)


def test_constructor_rejects_bad_parameters():
    for bad in [
        dict(candidates=0), dict(candidates=2.5), dict(alpha=-1), dict(hint_rate=1.5), dict(extra_mask_rate=0.0),
        dict(confidence_weight=-1), dict(hidden_units=[]), dict(noise_scale=-0.1),
    ]:
        with pytest.raises(ValueError):
            GAMIN(**bad)
