"""EMFlow: online EM, the flow's density, the initial fills, and that it learns on a real table."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import multivariate_normal

from keraszoo.models.emflow import EMFlow, fills, online_em
from keraszoo.testing import breast_mcar, check_every_weight_trains, mean_imputation, missing_rmse, table_example


def known_gaussian(p=4, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(p, p))
    covariance = a @ a.T / p + 0.3 * np.eye(p)
    return rng.normal(size=p), covariance


@tf.function
def online_em_epoch(batches, masks, mean, covariance, t, with_covariance):
    for i in tf.range(tf.shape(batches)[0]):
        z_hat, conditional = online_em.conditional_gaussian(batches[i], masks[i], mean, covariance, with_covariance=with_covariance)
        first, second = online_em.batch_statistics(z_hat, conditional)
        batch_mean, batch_covariance = online_em.moments(first, second, tf.cast(tf.shape(z_hat)[0], tf.float32))
        t = t + 1.0
        rho = online_em.step_size(t)
        mean, covariance = online_em.moving_average(mean, batch_mean, rho), online_em.moving_average(covariance, batch_covariance, rho)
    return mean, covariance, t


def run_online_em(with_covariance, epochs=6):
    mu, sigma = known_gaussian()
    rng = np.random.default_rng(1)
    z = rng.multivariate_normal(mu, sigma, size=256 * 80).astype(np.float32)
    mask = (rng.random(z.shape) >= 0.3).astype(np.float32)
    z_seen = np.where(mask > 0, z, 0.0).reshape(80, 256, -1)  # the missing values are never used
    mean, covariance, t = tf.zeros(4), tf.eye(4), tf.constant(0.0)
    for _ in range(epochs):
        mean, covariance, t = online_em_epoch(tf.constant(z_seen), tf.constant(mask.reshape(80, 256, -1)), mean, covariance, t,
                                              with_covariance)
    return mu, sigma, mean.numpy(), covariance.numpy()


def test_online_em_recovers_a_gaussian_with_30_percent_missing():
    """Eqs. 7, 9, 18, 21 from N(0, I) on 20,480 rows, 30% MCAR, batches of 256: within 0.05 of mu and
    0.08 of every entry of Sigma (sampling error alone is about 0.02)."""
    mu, sigma, mean, covariance = run_online_em(with_covariance=True)
    assert np.abs(mean - mu).max() < 0.05, (mean, mu)
    assert np.abs(covariance - sigma).max() < 0.08, (covariance, sigma)


def test_without_the_conditional_covariance_the_variances_shrink():
    """Eq. 7's batch covariance of z-hat alone (no Sigma-tilde, the paper's main-text form) underestimates
    every variance: the reason eq. 21 is implemented."""
    mu, sigma, _, covariance = run_online_em(with_covariance=False)
    assert (np.diag(covariance) < 0.9 * np.diag(sigma)).all(), (np.diag(covariance), np.diag(sigma))


def test_conditional_mean_and_covariance_match_the_textbook_formulas():
    mu, sigma = known_gaussian(p=5, seed=3)
    z = np.random.default_rng(2).normal(size=(3, 5)).astype(np.float32)
    observed = np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    z_hat, conditional = online_em.conditional_gaussian(tf.constant(z), tf.constant(observed), tf.constant(mu, tf.float32), tf.constant(sigma, tf.float32))
    o, m = observed[0] > 0, observed[0] == 0
    gain = sigma[np.ix_(m, o)] @ np.linalg.inv(sigma[np.ix_(o, o)])
    np.testing.assert_allclose(z_hat[0].numpy()[m], mu[m] + gain @ (z[0, o] - mu[o]), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(z_hat[0].numpy()[o], z[0, o])
    np.testing.assert_allclose(conditional[0].numpy()[np.ix_(m, m)], sigma[np.ix_(m, m)] - gain @ sigma[np.ix_(o, m)], rtol=1e-4, atol=1e-5)
    assert not conditional[0].numpy()[o].any()
    np.testing.assert_allclose(z_hat[1].numpy(), mu, rtol=1e-5)  # nothing observed: the mean and the covariance
    np.testing.assert_allclose(conditional[1].numpy(), sigma, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(z_hat[2].numpy(), z[2])
    assert not conditional[2].numpy().any()


def randomised_flow(p=4, seed=0):
    """A built EMFlow whose coupling outputs are random (not the identity they start as) and whose base is
    a known N(mu, Sigma)."""
    model = EMFlow(hidden_units=[8, 8], coupling_pairs=2, seed=seed)
    model.build((None, p))
    rng = np.random.default_rng(seed)
    for network in model.coupling_networks.networks:
        output = network.get_layer("output")
        output.set_weights([0.3 * rng.normal(size=w.shape).astype(np.float32) for w in output.get_weights()])
    mu, sigma = known_gaussian(p, seed)
    model.base_mean.assign(mu.astype(np.float32))
    model.base_covariance.assign(sigma.astype(np.float32))
    return model, mu, sigma


def test_flow_is_invertible_and_its_log_prob_is_the_change_of_variables():
    model, mu, sigma = randomised_flow()
    x = tf.constant(np.random.default_rng(5).uniform(size=(16, 4)), tf.float32)
    bijector = model.bijector()
    z = bijector.inverse(x)
    np.testing.assert_allclose(model.bijector().forward(z).numpy(), x.numpy(), atol=1e-5)
    assert np.abs(z.numpy() - x.numpy()).max() > 0.05  # a real transformation, not the identity
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = model.bijector().inverse(x)
    jacobian = tape.batch_jacobian(z, x).numpy()
    expected = multivariate_normal(mu, sigma).logpdf(z.numpy()) + np.log(np.abs(np.linalg.det(jacobian)))
    np.testing.assert_allclose(model.log_prob_rows(x).numpy(), expected, rtol=1e-4, atol=1e-3)
    # the exported density hooks: log_prob, and log_likelihood on complete rows whatever the number of samples
    np.testing.assert_allclose(model.log_prob(x.numpy()).numpy(), expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(model.log_likelihood(x.numpy(), np.ones((16, 4)), samples=3).numpy(), expected, rtol=1e-4, atol=1e-3)
    incomplete = x.numpy().copy()
    incomplete[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"log_prob takes complete rows; row\(s\) \[3\]"):
        model.log_prob(incomplete)


def test_log_likelihood_of_incomplete_rows_is_the_gaussian_marginal_for_the_identity_flow():
    """A new model's flow is the identity (zero-initialised outputs), so p_X = N(mu, Sigma) and log p(x°)
    is the Gaussian marginal of the observed block; importance sampling with 4,000 draws is within 0.05."""
    model = EMFlow(hidden_units=[8], coupling_pairs=1, seed=0)
    model.build((None, 4))
    mu, sigma = known_gaussian()
    model.base_mean.assign(mu.astype(np.float32))
    model.base_covariance.assign(sigma.astype(np.float32))
    model.feature_scale.assign(np.sqrt(np.diag(sigma)).astype(np.float32))
    x = np.random.default_rng(3).multivariate_normal(mu, sigma, size=6).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]], np.float32)
    estimate = model.log_likelihood(x, mask, samples=4000).numpy()
    for i, row in enumerate(mask > 0):
        exact = multivariate_normal(mu[row], sigma[np.ix_(row, row)]).logpdf(x[i, row])
        assert abs(estimate[i] - exact) < 0.05, (i, estimate[i], exact)


def test_every_flow_weight_trains():
    truth, mask = breast_mcar(0.2, 0)
    check_every_weight_trains(EMFlow(hidden_units=[6], coupling_pairs=1, alpha=10.0), (5,), (truth[:, :5], mask[:, :5]), steps=3)


def test_random_observed_fill_draws_each_columns_observed_values():
    x, mask = table_example()
    filled = fills.random_observed_fill(np.where(mask > 0, x, 0.0), mask, np.random.default_rng(0))
    np.testing.assert_array_equal(filled[mask > 0], x[mask > 0].astype(np.float32))
    for j in range(x.shape[1]):
        assert set(filled[mask[:, j] == 0, j]) <= set(x[mask[:, j] > 0, j].astype(np.float32))


def test_nearest_observed_fill_takes_a_pixel_of_the_nearest_ring_and_ring_mean_fill_its_mean():
    image = np.arange(1, 50, dtype=np.float32).reshape(1, 7, 7, 1)
    observed = np.zeros_like(image)
    observed[0, 0, 0] = observed[0, 3, 5] = observed[0, 5, 3] = observed[0, 6, 6] = 1.0
    picks = {fills.nearest_observed_fill(image * observed, observed, np.random.default_rng(s))[0, 4, 4, 0] for s in range(40)}
    assert picks == {image[0, 3, 5, 0], image[0, 5, 3, 0]}  # both at distance 1 from (4, 4), each drawn
    far = fills.nearest_observed_fill(image * observed, observed, np.random.default_rng(0))[0, 0, 6, 0]
    assert far == image[0, 3, 5, 0]  # (0, 6): distance 3 to (3, 5), 6 to the others
    mean_fill = fills.ring_mean_fill(tf.constant(image * observed), tf.constant(observed), tf.zeros((7, 7, 1))).numpy()
    assert mean_fill[0, 4, 4, 0] == pytest.approx((image[0, 3, 5, 0] + image[0, 5, 3, 0]) / 2)
    assert mean_fill[0, 0, 6, 0] == image[0, 3, 5, 0]
    np.testing.assert_array_equal(mean_fill[observed > 0], image[observed > 0])
    empty = fills.ring_mean_fill(tf.zeros((1, 7, 7, 1)), tf.zeros((1, 7, 7, 1)), tf.fill((7, 7, 1), 0.25)).numpy()
    assert (empty == 0.25).all()  # nothing observed: the fallback


def test_rounds_reimpute_the_table_and_reinitialise(monkeypatch):
    truth, mask = breast_mcar(0.2, 0)
    truth, mask = truth[:200, :6], mask[:200, :6]
    model = EMFlow(hidden_units=[8], coupling_pairs=1, rounds=3, alpha=100.0)
    calls = []
    original = EMFlow.reimpute

    def counting(self, x_hat, m):
        calls.append(float(self.em_step.numpy()))
        return original(self, x_hat, m)

    monkeypatch.setattr(EMFlow, "reimpute", counting)
    history = model.fit_arrays(truth, mask, epochs=6, batch_size=50)
    assert len(calls) == 2 and calls == [8.0, 8.0]  # after rounds 1 and 2, each of 2 epochs x 4 steps
    assert len(history.history["nll"]) == 6 and int(model.em_step.numpy()) == 8  # t restarted each round
    with pytest.raises(ValueError, match="at least 2 features"):
        EMFlow().build((None, 1))


def test_by_default_a_round_is_one_pass_over_the_rows(monkeypatch):
    """Algorithm 1's T_epoch: rounds=None cuts training into rounds of one pass each (at Keras-epoch
    granularity, at least one Keras epoch each); rounds=R into R equal rounds."""
    model = EMFlow()
    assert list(model.round_bounds(6, 4, 4)) == [0, 1, 2, 3, 4, 5, 6]  # a Keras epoch is a pass
    assert len(model.round_bounds(100, 50, 94)) - 1 == 53  # credit's 94 batches of 256 a pass: 5,000 steps, 53 rounds
    assert list(model.round_bounds(3, 50, 1)) == [0, 1, 2, 3]  # a pass shorter than a Keras epoch: one round per epoch
    assert list(EMFlow(rounds=2).round_bounds(6, 4, 4)) == [0, 3, 6]
    truth, mask = breast_mcar(0.2, 0)
    calls = []
    monkeypatch.setattr(EMFlow, "reimpute", lambda self, x_hat, m: calls.append(len(x_hat)) or x_hat)
    EMFlow(hidden_units=[8], coupling_pairs=1).fit_arrays(truth[:200, :6], mask[:200, :6], epochs=4, batch_size=50)
    assert calls == [200] * 3  # 4 passes: 4 rounds, 3 re-imputations


@pytest.mark.parametrize("bad, message", [({"step_power": 0.5}, "step_power"), ({"step_scale": 1.0}, "step_scale"),
                                          ({"beta_schedule": []}, "beta_schedule"), ({"alpha": -1.0}, "alpha"),
                                          ({"hidden_units": "wide"}, "hidden_units"), ({"rounds": 0}, "rounds")])
def test_bad_parameters_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        EMFlow(**bad)


def test_emflow_learns_on_breast_cancer():
    """20% MCAR on the 30-column breast-cancer table, one pair of coupling layers of 32 units, 300 steps in 3
    rounds: RMSE 0.048 here (mean imputation 0.151), observed entries kept."""
    truth, mask = breast_mcar(0.2, 0)
    model = EMFlow(rounds=3, seed=0, coupling_pairs=1, hidden_units=[32])
    model.fit_arrays(truth, mask, iterations=300)
    imputed = np.asarray(model.impute(truth, mask))
    np.testing.assert_array_equal(imputed[mask > 0], truth[mask > 0])
    rmse, mean_rmse = missing_rmse(truth, imputed, mask), missing_rmse(truth, mean_imputation(truth, mask), mask)
    assert rmse < 0.5 * mean_rmse, (rmse, mean_rmse)


def test_emflow_on_images_trains_through_training_train_with_tensorboard_and_exports(tmp_path):
    """8x8 digits: the nearest-pixel fills, two rounds through `training.train`, TensorBoard's losses, rho_t
    and held-out RMSE per epoch, and an export that imputes images keeping observed pixels."""
    import io
    import json
    import os
    from contextlib import redirect_stdout

    from keraszoo.testing import check_exported_digit_images, tensorboard_tensors
    from training import train

    out = io.StringIO()
    with redirect_stdout(out):
        summary = train.main(
            ["--model", "emflow", "--dataset", "digits", "--mechanism", "mcar", "--epochs", "2", "--batch-size", "128",
             "--set", "hidden_units=[16]", "--set", "coupling_pairs=1", "--set", "rounds=2", "--set", "alpha=1000.0",
             "--logdir", str(tmp_path / "logs"), "--export", str(tmp_path / "serving"), "--force"]
        )
    assert "examples of 8x8x1" in out.getvalue(), out.getvalue()
    config = json.load(open(os.path.join(str(tmp_path / "logs"), "config.json")))
    assert config["params"]["rounds"] == 2 and config["params"]["hidden_units"] == [16], config
    logs = {run: tensorboard_tensors(str(tmp_path / "logs"), run) for run in ("train", "validation")}
    assert {"epoch_nll", "epoch_l2_loss", "epoch_rho", "epoch_mse_observed"} <= set(logs["train"]), sorted(logs["train"])
    assert len(logs["train"]["epoch_rho"]) == 2 and all(0 < float(r) < 1 for r in logs["train"]["epoch_rho"])
    held_out = [float(v) for v in logs["validation"]["epoch_rmse"]]
    assert len(held_out) == 2 and min(held_out) == pytest.approx(summary["val_rmse"], rel=1e-5)  # the best epoch's model
    check_exported_digit_images(summary["export_path"])


def test_export_round_trip_with_the_exact_log_prob_in_raw_units(tmp_path):
    """A fitted EMFlow on a real table exports `serving_default`, `impute_with_mask`, `log_likelihood` and
    `log_prob`; the reloaded imputation equals the model's (observed values unchanged), `log_prob` is the
    model's exact density minus the min-max scaling's log-Jacobian, a NaN is refused inside the graph,
    and the stock client gets the same numbers over gRPC."""
    from sklearn.datasets import load_breast_cancer

    from keraszoo.sklearn import ZooImputer
    from serving.client import ImputeClient
    from serving.export import export
    from serving.server import ImputationServer, make_manager

    raw = load_breast_cancer().data[:160]
    rows = raw.copy()
    rows[np.random.default_rng(0).random(rows.shape) < 0.2] = np.nan
    imputer = ZooImputer("emflow", coupling_pairs=1, hidden_units=[16], rounds=2, iterations=100, batch_size=64).fit(rows)
    loaded = tf.saved_model.load(export(imputer, str(tmp_path), "emflow_breast", version=1))
    assert {"serving_default", "impute_with_mask", "log_likelihood", "log_prob"} <= set(loaded.signatures)
    imputed = loaded.signatures["serving_default"](x=tf.constant(rows, tf.float32))["imputed"].numpy()
    observed = ~np.isnan(rows)
    np.testing.assert_array_equal(imputed[observed], rows[observed].astype(np.float32))
    to_scaled = lambda a: (a - imputer.scaler_.data_min_) / imputer.scaler_.data_range_  # noqa: E731
    np.testing.assert_allclose(to_scaled(imputed), to_scaled(imputer.transform(rows)), atol=1e-4)  # float32 graph vs eager

    complete = raw[:40].astype(np.float32)
    served = loaded.signatures["log_prob"](x=tf.constant(complete))["log_prob"].numpy()
    expected = imputer.model_.log_prob(to_scaled(complete).astype(np.float32)).numpy() - np.log(imputer.scaler_.data_range_).sum()
    assert served.shape == (40,) and np.isfinite(served).all()
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=0.05)
    with pytest.raises(tf.errors.InvalidArgumentError, match="log_prob takes complete rows"):
        loaded.signatures["log_prob"](x=tf.constant(rows[:5], tf.float32))

    server = ImputationServer(make_manager(model_base_path=str(tmp_path / "emflow_breast"), poll_seconds=0), port=0, rest_port=0)
    server.start()
    try:
        client = ImputeClient(f"127.0.0.1:{server.grpc_port}")
        np.testing.assert_allclose(client.log_prob("emflow_breast", complete), served, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(to_scaled(client.impute("emflow_breast", rows[:8].astype(np.float32))), to_scaled(imputed[:8]), atol=1e-5)
    finally:
        server.stop()
