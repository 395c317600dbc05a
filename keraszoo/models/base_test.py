"""`make_dataset`: the training batches every deep model's `fit` reads."""
import numpy as np

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

