"""The MisConv classifier learns incomplete digits, with its DMFA trained first and then frozen."""
import numpy as np
from sklearn.datasets import load_digits

from keraszoo.data.missingness import square_mask
from keraszoo.models.misconv import MisConvClassifier
from keraszoo.testing import check_every_weight_trains


def test_the_misconv_classifier_learns_incomplete_digits_and_freezes_its_dmfa_after_its_steps():
    data = load_digits()
    images = data.images[..., None].astype(np.float32) / 16.0
    mask = square_mask(images, seed=0).astype(np.float32)  # a quarter of every image missing
    train, test = slice(0, 1400), slice(1400, None)
    model = MisConvClassifier(first_filters=16, filters=16, latent=20, dmfa={"n_factors": 4, "filters": [16, 16, 16, 16], "mse_warmup_steps": 300}, dmfa_steps=1000, seed=0)
    history = model.fit_arrays(images[train], mask[train], data.target[train], iterations=1000, batch_size=24, learning_rate={"dmfa_optimizer": 1e-3, "classifier_optimizer": 1e-3})
    assert int(model.steps_done.numpy()) == 1000 and history.history["loss"][-1] == 0.0  # the classifier has not moved yet
    dmfa_weights = [w.numpy().copy() for w in model.dmfa.weights]
    model.fit_arrays(images[train], mask[train], data.target[train], iterations=1000, batch_size=24)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(dmfa_weights, model.dmfa.weights))  # frozen
    accuracy = np.mean(np.argmax(model.predict_proba(images[test], mask[test]), axis=1) == data.target[test])
    assert accuracy > 0.8, accuracy  # 0.834 when written (zero-fill 0.771, mask 0.783, PC 0.824 in the test below)


def test_every_misconv_classifier_weight_trains_in_its_phase():
    """Two DMFA steps, then three classifier steps: every weight (the DMFA's, MisConv's, the rest) moves."""
    model = MisConvClassifier(first_filters=4, filters=4, latent=6, dmfa={"n_factors": 2, "filters": [4, 4, 4, 4]}, dmfa_steps=2, n_classes=3, seed=0)
    check_every_weight_trains(model, (8, 8, 1), None, steps=5, labels=3)
    assert int(model.steps_done.numpy()) == 5


def test_the_dmfa_mean_baseline_convolves_the_image_completed_by_the_mixture_mean():
    import tensorflow as tf

    model = MisConvClassifier(first_filters=4, filters=4, latent=6, dmfa={"n_factors": 2, "n_components": 2, "filters": [4, 4, 4, 4]}, dmfa_steps=2, first_layer="dmfa_mean", n_classes=3, seed=0)
    x, mask = check_every_weight_trains(model, (8, 8, 1), None, steps=5, labels=3)
    x, mask = tf.constant(x, tf.float32), tf.constant(mask, tf.float32)
    means, _, _, log_weights = model.dmfa.mixture(x * mask, mask)
    completed = tf.where(mask > 0, x, tf.reshape(tf.einsum("bk,bkd->bd", tf.exp(log_weights), means), tf.shape(x)))
    conv = model.first.get_layer("conv")
    expected = model.body(model.first.layers[-1](conv(completed)))
    np.testing.assert_allclose(model.logits(x * mask, mask).numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_the_first_layer_baselines_learn_incomplete_digits():
    from keraszoo.models.misconv import MaskFirstClassifier, PartialConvClassifier, ZeroFirstClassifier

    data = load_digits()
    images = data.images[..., None].astype(np.float32) / 16.0
    mask = square_mask(images, seed=0).astype(np.float32)
    for cls in (ZeroFirstClassifier, MaskFirstClassifier, PartialConvClassifier):
        model = cls(first_filters=16, filters=16, latent=20, seed=0)
        model.fit_arrays(images[:1400], mask[:1400], data.target[:1400], iterations=1000, batch_size=24)
        accuracy = np.mean(np.argmax(model.predict_proba(images[1400:], mask[1400:]), axis=1) == data.target[1400:])
        assert accuracy > 0.7, (cls.__name__, accuracy)  # chance is 0.1
