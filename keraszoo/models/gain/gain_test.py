import os

import keras
import numpy as np
import pytest

from keraszoo.models.base import make_dataset
from keraszoo.models.gain import GAIN
from keraszoo.validation import ImputationInputError
from keraszoo.testing import mean_imputation, missing_rmse


@pytest.fixture(scope="module")
def trained(breast_mcar):
    truth, mask = breast_mcar
    model = GAIN(seed=1)
    model.fit_arrays(truth, mask, iterations=1500)
    return model


def test_gain_beats_mean_imputation_on_real_table(breast_mcar, trained):
    truth, mask = breast_mcar
    gain_rmse = missing_rmse(truth, trained.impute(truth, mask), mask)
    mean_rmse = missing_rmse(truth, mean_imputation(truth, mask), mask)
    assert gain_rmse < 0.75 * mean_rmse, (gain_rmse, mean_rmse)


def test_observed_entries_unchanged_and_missing_values_ignored(breast_mcar, trained):
    truth, mask = breast_mcar
    poisoned = np.where(mask == 1, truth, np.nan)  # NaN at missing entries must not leak
    out = trained.impute(poisoned, mask).numpy()
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[mask == 1], truth[mask == 1])


def test_impute_is_deterministic_and_row_independent(breast_mcar, trained):
    truth, mask = breast_mcar
    full = trained.impute(truth, mask).numpy()
    np.testing.assert_array_equal(full, trained.impute(truth, mask).numpy())
    np.testing.assert_allclose(full[:7], trained.impute(truth[:7], mask[:7]).numpy(), atol=1e-6)


def test_sample_imputations_draw_distinct_imputations(breast_mcar, trained):
    truth, mask = breast_mcar
    draws = trained.sample_imputations(truth[:50], mask[:50], 4).numpy()
    assert draws.shape == (4, 50, truth.shape[1])
    for draw in draws:
        np.testing.assert_array_equal(draw[mask[:50] == 1], truth[:50][mask[:50] == 1])
    assert np.std(draws, axis=0)[mask[:50] == 0].max() > 0


def test_train_step_updates_every_weight_and_reports_finite_losses(breast_mcar):
    truth, mask = breast_mcar
    model = GAIN()
    model.build((None, truth.shape[1]))
    model.compile()
    before = [w.numpy().copy() for w in model.trainable_weights]
    logs = model.train_step(next(iter(make_dataset(truth, mask, 64))))
    assert set(logs) == {"d_loss", "g_loss", "mse_observed"}
    assert all(np.isfinite(float(v)) for v in logs.values())
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]
    assert int(model.g_optimizer.iterations) == 1 and int(model.d_optimizer.iterations) == 1


def test_fit_runs_requested_iterations(breast_mcar):
    truth, mask = breast_mcar
    model = GAIN()
    history = model.fit_arrays(truth, mask, iterations=120, batch_size=32)
    assert int(model.g_optimizer.iterations) == 120
    assert len(history.history["g_loss"]) >= 1


@pytest.mark.parametrize("epochs, batch_size, steps", [(20, 128, 80), (3, 100, 15), (2, 569, 2)])
def test_fit_runs_exactly_the_requested_epochs(breast_mcar, epochs, batch_size, steps):
    """569 rows in batches of 128 are 4 steps a pass: epochs=20 is 80 steps (it ran 1,000 when epochs were
    rounded up to the compiled steps_per_execution of 50)."""
    truth, mask = breast_mcar
    model = GAIN()
    history = model.fit_arrays(truth, mask, epochs=epochs, batch_size=batch_size)
    assert int(model.g_optimizer.iterations) == steps
    assert int(model.d_optimizer.iterations) == steps
    assert len(history.epoch) == epochs


def test_fit_arrays_again_runs_exactly_the_new_steps(breast_mcar):
    """A compiled model's steps_per_execution is lowered to a divisor of the epoch, never rounded up."""
    truth, mask = breast_mcar
    model = GAIN()
    model.fit_arrays(truth, mask, iterations=100, batch_size=64)
    model.fit_arrays(truth, mask, iterations=21, batch_size=64)
    model.fit_arrays(truth, mask, epochs=2, batch_size=64)  # 8 steps a pass
    assert int(model.g_optimizer.iterations) == 100 + 21 + 16
    model.fit_arrays(truth, mask, iterations=100, batch_size=64)
    assert int(model.steps_per_execution) == 50  # back to the compiled 50, not stuck at the last divisor


def test_paper_hint_withholds_exactly_one_coordinate_per_row():
    """The GAIN paper's hint: B has a single 0 per row, uniformly placed; D's loss sees only that coordinate."""
    model = GAIN(hint_variant="paper", seed=2)
    mask = np.ones((4000, 7), np.float32)
    b = model.hint_mask(mask).numpy()
    np.testing.assert_array_equal((b == 0).sum(axis=1), np.ones(4000))
    counts = (b == 0).sum(axis=0)
    assert counts.min() > 4000 / 7 * 0.8 and counts.max() < 4000 / 7 * 1.2, counts  # uniform over coordinates
    code = GAIN(hint_variant="code", hint_rate=0.9, seed=2).hint_mask(mask).numpy()
    assert abs((code == 0).mean() - 0.1) < 0.01  # the reference code's Bernoulli(hint_rate) per entry


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_both_hint_variants_train(breast_mcar, variant):
    truth, mask = breast_mcar
    model = GAIN(hint_variant=variant)
    history = model.fit_arrays(truth, mask, iterations=100)
    assert np.isfinite(history.history["d_loss"][-1])


def test_every_parameter_changes_the_model(breast_mcar):
    truth, mask = breast_mcar
    batches = list(make_dataset(truth, mask, 64).take(2))  # two eager steps move the output for any parameter
    # (graph-mode training of these variants: the learning fixture, test_both_hint_variants_train, the contract)

    def trained_output(**params):
        model = GAIN(**params)
        model.build((None, truth.shape[1]))
        model.compile_default()
        for batch in batches:
            model.train_step(batch)
        return model.impute(truth, mask).numpy()

    reference = trained_output()
    for params in [dict(hint_rate=0.5), dict(alpha=10.0), dict(noise_scale=0.1), dict(hint_variant="paper"), dict(extra_mask_rate=0.2), dict(seed=3)]:
        assert not np.allclose(reference, trained_output(**params)), params
    wide = GAIN(hidden_units=[7, 5])
    wide.build((None, truth.shape[1]))
    assert [layer.units for layer in wide.generator.layers] == [7, 5, truth.shape[1]]


def test_constructor_rejects_bad_parameters():
    for bad in [dict(hint_rate=1.5), dict(alpha=-1), dict(hint_variant="other"), dict(hidden_units=[]), dict(extra_mask_rate=1.0)]:
        with pytest.raises(ValueError):
            GAIN(**bad)


def test_impute_rejects_bad_input(trained):
    d = trained.n_features
    with pytest.raises(ImputationInputError, match="shape"):
        trained.impute(np.zeros((3, d)), np.ones((3, d - 1)))
    with pytest.raises(ImputationInputError, match=f"expected {d} features"):
        trained.impute(np.zeros((3, d + 1)), np.ones((3, d + 1)))
    with pytest.raises(ImputationInputError, match="empty"):
        trained.impute(np.zeros((0, d)), np.ones((0, d)))
    with pytest.raises(ImputationInputError, match="non-finite"):
        trained.impute(np.full((2, d), np.inf), np.ones((2, d)))
    with pytest.raises(RuntimeError, match="not built"):
        GAIN().impute(np.zeros((2, d)), np.ones((2, d)))


def test_save_and_load_round_trip(tmp_path, breast_mcar, trained):
    truth, mask = breast_mcar
    path = os.path.join(tmp_path, "gain.keras")
    trained.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert isinstance(loaded, GAIN)
    assert loaded.get_config() == trained.get_config()
    np.testing.assert_allclose(loaded.impute(truth, mask), trained.impute(truth, mask), atol=1e-6)


def test_get_config_round_trip():
    model = GAIN(hint_rate=0.7, alpha=50.0, hidden_units=[8, 4], noise_scale=0.02, hint_variant="paper", extra_mask_rate=0.1, seed=5)
    clone = GAIN.from_config(model.get_config())
    for key in ["hint_rate", "alpha", "hidden_units", "noise_scale", "hint_variant", "extra_mask_rate", "seed"]:
        assert getattr(clone, key) == getattr(model, key)


def test_impute_traces_once_for_varying_batch_sizes(trained):
    d = trained.n_features
    for rows in (3, 5, 11):
        trained.impute(np.zeros((rows, d), np.float32), np.ones((rows, d), np.float32))
    assert trained._impute_fn.experimental_get_tracing_count() == 1  # a None-batch input signature: one trace for all


def test_each_instance_has_its_own_impute_function(breast_mcar):
    """A class-level tf.function retraced for every new model (TensorFlow's "5 out of the last 5 calls
    ... triggered tf.function retracing" warning in the demo): each instance traces its own once."""
    truth, mask = breast_mcar
    models = [GAIN(seed=s) for s in range(6)]
    for model in models:
        model.build((None, truth.shape[1]))
        model.impute(truth[:9], mask[:9])
        model.impute(truth[:9], mask[:9])
    assert all(m._impute_fn.experimental_get_tracing_count() == 1 for m in models)
    assert models[0]._impute_fn is not models[1]._impute_fn


def test_build_optimizers_creates_slots_before_fit():
    """Needed under a distribution strategy, where optimizer variables must exist before `fit`."""
    model = GAIN()
    model.build((None, 6))
    model.compile()
    model.build_optimizers()
    assert [name for name, _, _ in model.optimizers_and_variables()] == ["g_optimizer", "d_optimizer"]
    for _, optimizer, variables in model.optimizers_and_variables():
        assert optimizer.built
        assert len(optimizer.variables) > len(variables)  # moments per weight + counters


def test_paper_hint_discriminator_loss_counts_only_the_withheld_coordinate(breast_mcar):
    """With B's 0 at coordinate 0 of every row and a D that is maximally wrong (logit ±100) wherever the
    hint reveals the mask, D's loss under the paper's hint is log 2 (its logit 0 at coordinate 0) and
    nothing of the other coordinates; the reference code's variant counts them all."""
    import keras
    import tensorflow as tf

    class RevealedWrong(keras.layers.Layer):
        def build(self, input_shape):
            self.unused = self.add_weight(shape=(), initializer="zeros")

        def call(self, inputs):
            d = inputs.shape[-1] // 2
            hint = inputs[:, d:]
            wrong = 100.0 * (1.0 - 2.0 * hint)  # observed (hint 1) -> -100, missing (hint 0) -> +100
            return tf.concat([tf.zeros_like(wrong[:, :1]), wrong[:, 1:]], axis=1) + 0.0 * self.unused

    truth, mask = breast_mcar
    x, m = tf.constant(truth[:64]), tf.constant(mask[:64])
    losses = {}
    for variant in ("paper", "code"):
        model = GAIN(hint_variant=variant, hint_rate=1.0, seed=0)
        model.build((None, truth.shape[1]))
        model.compile_default()
        # swapped in after build (Keras refuses new sub-layers on a built model, hence object.__setattr__)
        object.__setattr__(model, "discriminator", keras.Sequential([keras.Input((2 * truth.shape[1],)), RevealedWrong()]))
        object.__setattr__(model, "d_optimizer", keras.optimizers.Adam())
        model.hint_mask = lambda mask_: tf.concat([tf.zeros_like(mask_[:, :1]), tf.ones_like(mask_[:, 1:])], axis=1)
        losses[variant] = float(model.train_step((x, m))["d_loss"])
    assert abs(losses["paper"] - np.log(2.0)) < 1e-5, losses
    assert losses["code"] > 50, losses
