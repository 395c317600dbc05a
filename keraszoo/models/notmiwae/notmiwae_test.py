import numpy as np
import pytest
import tensorflow as tf

from keraszoo.data.missingness import mnar_mask
from keraszoo.models.notmiwae import NotMIWAE
from keraszoo.models.notmiwae.missingness import SelfMasking, log_prob_observed_pattern
from keraszoo.testing import breast_mcar, check_every_weight_trains, check_keeps_observed_and_draws_differ, mean_imputation, missing_rmse


@pytest.fixture(scope="module")
def breast_mnar():
    """Breast cancer, min-max scaled, 30% self-masking MNAR (larger values more often missing)."""
    truth, _ = breast_mcar()
    return truth, mnar_mask(truth, 0.3, seed=0, strength=2.0)


@pytest.fixture(scope="module")
def trained(breast_mnar):
    truth, mask = breast_mnar
    model = NotMIWAE(seed=1, missing_process="selfmasking_known", imputation_samples=200)
    model.fit_arrays(truth, mask, iterations=1000, batch_size=32)
    return model


def test_learns_the_data_and_the_direction_of_the_missingness(breast_mnar, trained):
    truth, mask = breast_mnar
    rmse = missing_rmse(truth, trained.impute(truth, mask), mask)
    mean_rmse = missing_rmse(truth, mean_imputation(truth, mask), mask)
    assert rmse < 0.8 * mean_rmse, (rmse, mean_rmse)  # 0.75x at 1,000 steps (MIWAE 0.69x, 0.64x at 3,000)
    # mnar_mask's slope is 2 per column std, about 12 on this min-max data; the model starts at softplus(0) = 0.69
    slopes = trained.missingness.slope().numpy()
    assert np.median(slopes) > 2.0, slopes


def test_observed_unchanged_draws_differ_and_single_imputation_is_deterministic(breast_mnar, trained):
    check_keeps_observed_and_draws_differ(trained, *breast_mnar)


def test_missingness_log_prob_is_a_bernoulli_per_entry():
    logits = tf.constant([[2.0, -1.0, 0.5]])
    mask = tf.constant([[1.0, 0.0, 1.0]])
    probs = 1 / (1 + np.exp(-logits.numpy()))
    expected = np.log(probs[0, 0]) + np.log(1 - probs[0, 1]) + np.log(probs[0, 2])
    np.testing.assert_allclose(log_prob_observed_pattern(logits, mask, [1]).numpy(), [expected], rtol=1e-6)
    layer = SelfMasking((3,), known_sign=True)
    layer.raw_weight.assign([0.0, 1.0, -1.0])
    layer.offset.assign([0.5, 0.5, 0.5])
    x = tf.constant([[0.9, 0.9, 0.1]])
    # larger than the offset: less likely observed, with slope softplus(raw)
    np.testing.assert_allclose(layer(x).numpy()[0], -np.log1p(np.exp([0.0, 1.0, -1.0])) * np.array([0.4, 0.4, -0.4]), rtol=1e-5)


def test_self_masking_offsets_start_at_the_observed_means(breast_mnar):
    truth, mask = breast_mnar
    model = NotMIWAE(seed=0, latent_dim=2, encoder_units=[4], decoder_units=[4])
    model.fit_arrays(truth, mask, iterations=1, batch_size=16, learning_rate=1e-12)  # one step that moves nothing
    observed_mean = np.nansum(np.where(mask == 1, truth, np.nan), axis=0) / mask.sum(0)
    np.testing.assert_allclose(model.missingness.offset.numpy(), observed_mean, atol=1e-6)


@pytest.mark.parametrize(
    "shape, params",
    [((30,), {}), ((30,), dict(missing_process="linear", imputation="zero")),
     ((8, 8, 1), dict(filters=2, dense_units=8, missing_process="nonlinear", missing_units=4, observation="studentt"))],
)
def test_train_step_updates_every_weight(breast_mnar, shape, params):
    model = NotMIWAE(seed=0, latent_dim=4, **params)
    x, m = check_every_weight_trains(model, shape, breast_mnar)
    assert any("missingness" in w.path for w in model.trainable_weights)
    draws = model.sample_imputations(x[:5], m[:5], 2)
    assert draws.shape == (2, 5) + shape and np.isfinite(draws).all()


def test_constructor_rejects_bad_parameters():
    with pytest.raises(ValueError, match="Bernoulli"):
        NotMIWAE(observation="bernoulli")
    with pytest.raises(ValueError, match="missing_process"):
        NotMIWAE(missing_process="logistic")
    with pytest.raises(ValueError, match="missing_units"):
        NotMIWAE(missing_units=0)
