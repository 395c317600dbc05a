"""`make_dataset`: the training batches every deep model's `fit` reads."""
import numpy as np
import pytest

from keraszoo.models.base import make_dataset


def _batches(dataset, count):
    return [(x.numpy(), m.numpy()) for x, m in dataset.take(count)]


def test_training_batches_are_per_epoch_permutations_of_the_rows():
    rows, batch = 10, 4
    x = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + 1.0  # row i holds 3i+1 .. 3i+3
    mask = np.ones_like(x)
    mask[2, 1] = 0.0
    batches = _batches(make_dataset(x, mask, batch_size=batch, seed=7), 6)  # 3 epochs of 2 full batches

    assert all(xb.shape == (batch, 3) and mb.shape == (batch, 3) for xb, mb in batches)
    epochs = []
    for start in range(0, 6, 2):
        ids = np.concatenate([(xb[:, 0] - 1) // 3 for xb, _ in batches[start : start + 2]]).astype(int)
        assert len(set(ids)) == 2 * batch  # without replacement within an epoch
        epochs.append(tuple(ids))
    assert len(set(epochs)) == 3  # a new order every epoch
    for xb, mb in batches:  # values and mask travel together; missing entries are zeroed
        ids = ((xb[:, 0] - 1) // 3).astype(int)
        np.testing.assert_array_equal(mb, mask[ids])
        np.testing.assert_array_equal(xb, np.where(mask[ids] == 1, x[ids], 0.0))


def test_training_batches_repeat_exactly_for_a_seed():
    x = np.random.default_rng(0).random((50, 4)).astype(np.float32)
    mask = np.ones_like(x)
    first = _batches(make_dataset(x, mask, batch_size=16, seed=3), 8)
    again = _batches(make_dataset(x, mask, batch_size=16, seed=3), 8)
    other = _batches(make_dataset(x, mask, batch_size=16, seed=4), 8)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))



# --------------------------------------------------------------------------------------------------
# the contract's hooks: chunked imputation, training in rounds, one learning rate per optimizer
# --------------------------------------------------------------------------------------------------
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keraszoo.models import base  # noqa: E402
from keraszoo.models.base import DeepImputer, chunked_rows, global_sum, merge_histories, plan_steps  # noqa: E402


class _Rows(DeepImputer):
    """Imputes each entry with its row's observed mean times a weight: a row-wise model to test chunking."""

    optimizer_networks = {"optimizer_net": "net"}
    generative = True

    def build_networks(self, example_shape):
        self.net = keras.Sequential([keras.Input(example_shape), keras.layers.Dense(example_shape[0], use_bias=False)], name="net")

    def impute_batch(self, x, mask):
        return self.net(x) + tf.reduce_sum(x * mask, axis=1, keepdims=True) / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)

    def sample_batch(self, x, mask, n):
        return tf.stack([self.impute_batch(x, mask) + self.random_uniform(tf.shape(x)) for _ in range(3)])[:n]

    def values_per_row(self, draws=1):
        return base.IMPUTE_MEMORY_VALUES // 4 * draws  # a heavy model: 4 rows per chunk (1 with 3 draws)

    def train_step(self, data):
        x, mask = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(mask * tf.square(self.impute_batch(x, mask) - x)) / global_sum(tf.reduce_sum(mask))
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.optimizer_net.apply_gradients(zip(grads, self.net.trainable_variables))
        return {"loss": global_sum(loss)}


def test_imputation_is_chunked_by_the_memory_hint_with_the_same_result():
    rng = np.random.default_rng(0)
    x = rng.random((11, 3)).astype(np.float32)
    mask = (rng.random(x.shape) > 0.3).astype(np.float32)
    model = _Rows()
    model.build((None, 3))
    assert model.rows_per_chunk() == 4 and model.rows_per_chunk(3) == 1
    whole = model._impute_graph(tf.constant(x), tf.constant(mask)).numpy()
    np.testing.assert_allclose(np.asarray(model.impute(x, mask)), whole, rtol=1e-6)
    assert model._impute_fn.experimental_get_tracing_count() == 1  # chunks of 4, 4 and 3 rows: one batch-free trace
    # in a graph (what export runs): a loop over chunks of 4 rows gives the same, and one call when they fit
    looped = tf.function(lambda a, b: chunked_rows(model._impute_graph, [a, b], 4))(tf.constant(x), tf.constant(mask))
    np.testing.assert_allclose(looped.numpy(), whole, rtol=1e-6)
    draws = model.sample_imputations(x, mask, 3)
    assert draws.shape == (3, 11, 3)
    graph_draws = tf.function(lambda a, b: chunked_rows(lambda c, d: model._sample_graph(c, d, 3), [a, b], 2, axis=1))(
        tf.constant(x), tf.constant(mask)
    )
    assert graph_draws.shape == (3, 11, 3)
    np.testing.assert_array_equal(graph_draws.numpy()[:, mask == 1], np.broadcast_to(x[mask == 1], (3, int(mask.sum()))))


class _Rounds(_Rows):
    """Trains in two rounds, re-imputing the training table between them (as EMFlow and MCFlow do)."""

    def fit_rounds(self, x, mask, y=None, *, make_dataset, epochs, steps_per_epoch, batch_size=None, callbacks=None, verbose=0):
        self.round_inputs = []
        histories, done = [], 0
        for end in (epochs // 2, epochs):
            self.round_inputs.append(x.copy())
            histories.append(
                self.fit(make_dataset(x, mask), initial_epoch=done, epochs=end, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose, shuffle=False)
            )
            x = np.asarray(self.impute(x, mask))  # the next round trains on the re-imputed table
            done = end
        return merge_histories(histories)


def test_fit_rounds_is_the_training_hook_and_callbacks_see_every_round():
    rng = np.random.default_rng(1)
    x = rng.random((64, 3)).astype(np.float32)
    mask = (rng.random(x.shape) > 0.3).astype(np.float32)
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    model = _Rounds()
    history = model.fit_arrays(x, mask, epochs=4, batch_size=16, callbacks=[callback])
    assert seen == [0, 1, 2, 3] and history.epoch == [0, 1, 2, 3] and len(history.history["loss"]) == 4
    assert int(model.optimizer_net.iterations) == 4 * 4
    assert len(model.round_inputs) == 2 and not np.array_equal(model.round_inputs[0], model.round_inputs[1])


class _SmallBatches(_Rows):
    default_batch_size = 8


def test_a_models_default_batch_size_is_what_fit_arrays_uses_and_reports():
    rng = np.random.default_rng(2)
    x = rng.random((32, 3)).astype(np.float32)
    mask = (rng.random(x.shape) > 0.3).astype(np.float32)
    assert _SmallBatches.fit_parameters()["batch_size"] == 8 and _Rows.fit_parameters()["batch_size"] == 128
    model = _SmallBatches()
    model.fit_arrays(x, mask, epochs=1)
    assert int(model.optimizer_net.iterations) == 32 // 8
    model = _SmallBatches()
    model.fit_arrays(x, mask, epochs=1, batch_size=16)  # a given batch size still wins
    assert int(model.optimizer_net.iterations) == 32 // 16


def test_each_optimizer_has_its_own_learning_rate():
    from keraszoo.models.gain import GAIN

    model = GAIN()
    model.build((None, 4))
    assert model.learning_rates() == {"g_optimizer": 1e-3, "d_optimizer": 1e-3}
    model.compile_default({"d_optimizer": 4e-4})
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-3)
    assert float(model.d_optimizer.learning_rate) == pytest.approx(4e-4)
    model.compile_default(2e-3)
    assert float(model.g_optimizer.learning_rate) == float(model.d_optimizer.learning_rate) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="rate\\(s\\) for e_optimizer, which GAIN does not have; its optimizers: g_optimizer, d_optimizer"):
        model.compile_default({"e_optimizer": 1e-3})
    with pytest.raises(ValueError, match="must be a positive number"):
        model.compile_default({"g_optimizer": -1.0})
    assert GAIN.fit_parameters() == {"iterations": None, "epochs": None, "batch_size": 128, "learning_rate": None, "verbose": 0}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"epochs": 20}, (20, 4, 4)),  # 569 rows / 128 = 4 steps a pass
        ({"iterations": 10_000}, (20, 500, 50)),
        ({"iterations": 120}, (1, 120, 40)),
        ({"iterations": 1237}, (1, 1237, 1)),  # a prime: one step an execution, still exact
    ],
)
def test_plan_steps_runs_exactly_the_steps_asked(kwargs, expected):
    epochs, steps, execution = plan_steps(rows=569, batch_size=128, **kwargs)
    assert (epochs, steps, execution) == expected
    assert steps % execution == 0
