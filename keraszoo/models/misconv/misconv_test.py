"""The MisConv classifier learns incomplete digits, with its DMFA trained first and then frozen."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from sklearn.datasets import load_digits

from keraszoo.data.missingness import square_mask
from keraszoo.models.misconv import MisConvClassifier


def test_the_misconv_classifier_learns_incomplete_digits_and_freezes_its_dmfa_after_its_steps():
    data = load_digits()
    images = data.images[..., None].astype(np.float32) / 16.0
    mask = square_mask(images, seed=0).astype(np.float32)  # a quarter of every image missing
    train, test = slice(0, 1400), slice(1400, None)
    steps = 600  # per phase: DMFA first, then the classifier (the README snippet's 600 + 600)
    model = MisConvClassifier(first_filters=16, filters=16, latent=20, dmfa={"n_factors": 4, "filters": [16, 16, 16, 16], "mse_warmup_steps": 300}, dmfa_steps=steps, seed=0)
    history = model.fit_arrays(images[train], mask[train], data.target[train], iterations=steps, batch_size=24, learning_rate={"dmfa_optimizer": 1e-3, "classifier_optimizer": 1e-3})
    assert int(model.steps_done.numpy()) == steps and "loss" not in history.history and "dmfa_loss" in history.history  # only the DMFA trained
    dmfa_weights = [w.numpy().copy() for w in model.dmfa.weights]
    model.fit_arrays(images[train], mask[train], data.target[train], iterations=steps, batch_size=24)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(dmfa_weights, model.dmfa.weights))  # frozen
    accuracy = np.mean(np.argmax(model.predict_proba(images[test], mask[test]), axis=1) == data.target[test])
    assert accuracy > 0.8, accuracy  # 0.859 at 600 + 600 steps, as the README snippet (0.869 at 1,000 + 1,000; zero-fill 0.783, mask 0.821, PC 0.809 after 500 steps in the test below)


def trained_in_both_phases(model, steps=5):
    """Fit `model` (dmfa_steps < steps) for `steps` steps on 8x8 digits; assert every trainable weight moved."""
    from keraszoo.testing import image_example

    x, mask = image_example(rows=32)
    model.build((None, 8, 8, 1))
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit_arrays(x / 16.0, mask, load_digits().target[:32] % 3, iterations=steps, batch_size=16)
    unchanged = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(w.numpy(), b)]
    assert not unchanged, unchanged
    return x / 16.0, mask


def test_every_misconv_classifier_weight_trains_in_its_phase():
    """Two DMFA steps, then three classifier steps: every weight (the DMFA's, MisConv's, the rest) moves."""
    model = MisConvClassifier(first_filters=4, filters=4, latent=6, dmfa={"n_factors": 2, "filters": [4, 4, 4, 4]}, dmfa_steps=2, n_classes=3, seed=0)
    trained_in_both_phases(model)
    assert int(model.steps_done.numpy()) == 5 and model.phase() == "classifier"


def test_the_dmfa_mean_baseline_convolves_the_image_completed_by_the_mixture_mean():
    import tensorflow as tf

    model = MisConvClassifier(first_filters=4, filters=4, latent=6, dmfa={"n_factors": 2, "n_components": 2, "filters": [4, 4, 4, 4]}, dmfa_steps=2, first_layer="dmfa_mean", n_classes=3, seed=0)
    x, mask = trained_in_both_phases(model)
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
        model.fit_arrays(images[:1400], mask[:1400], data.target[:1400], iterations=500, batch_size=24)
        accuracy = np.mean(np.argmax(model.predict_proba(images[1400:], mask[1400:]), axis=1) == data.target[1400:])
        assert accuracy > 0.7, (cls.__name__, accuracy)  # chance is 0.1


TWO_REPLICAS = textwrap.dedent(
    """
    import json
    from keraszoo.distribute import get_strategy
    two = get_strategy("mirrored", n_cpu_replicas=2)  # before any TensorFlow op
    import numpy as np
    from sklearn.datasets import load_digits
    from keraszoo.models.misconv import MisConvClassifier
    from keraszoo.testing import image_example

    x, mask = image_example(rows=64)
    with two.scope():
        model = MisConvClassifier(first_filters=4, filters=4, latent=6, dmfa={"n_factors": 2, "filters": [4, 4, 4, 4]}, dmfa_steps=3, n_classes=10, seed=0)
        model.build((None, 8, 8, 1))
        model.compile_default()
        model.build_optimizers()
    history = model.fit_arrays(x / 16.0, mask, load_digits().target[:64], iterations=7, batch_size=32)
    print(json.dumps({"steps": int(model.steps_done.numpy()), "keys": sorted(history.history), "epochs": len(history.epoch)}))
    """
)


def test_both_phases_train_under_a_mirrored_strategy():
    """No optimizer update sits inside control flow: two CPU replicas run the DMFA steps, then the classifier's."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    result = subprocess.run([sys.executable, "-c", TWO_REPLICAS], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == 7 and {"dmfa_loss", "loss", "accuracy"} <= set(report["keys"]), report


def test_misconv_and_dmfa_export_and_serve_images_with_nan(tmp_path):
    """Use and deploy (issue #15): DMFA exports as an image imputer and the MisConv classifier with
    `predict(x) -> probabilities`; the embedded server answers both with what the fitted estimators give."""
    from keraszoo.sklearn import ZooClassifier, ZooImputer
    from serving.client import ImputeClient
    from serving.export import export
    from serving.server import ImputationServer, make_manager

    data = load_digits()
    images = data.images[:96, :, :, None] / 16.0
    incomplete = np.where(square_mask(images, seed=0), images, np.nan).astype(np.float32)
    small_dmfa = {"n_factors": 2, "filters": [4, 4, 4, 4]}
    dmfa = ZooImputer("dmfa", **small_dmfa, iterations=4, batch_size=16).fit(incomplete)
    classifier = ZooClassifier("misconv", first_filters=4, filters=4, latent=6, dmfa=small_dmfa, dmfa_steps=2, iterations=4, batch_size=16)
    classifier.fit(incomplete, data.target[:96])
    base = str(tmp_path / "serving")
    export(dmfa, base, "dmfa_digits")
    export(classifier, base, "misconv_digits")
    # in this process (a subprocess server is tested in test_contract_toys): one TensorFlow start-up less
    server = ImputationServer(make_manager(model_base_path=base, poll_seconds=0), port=0, rest_port=None).start()
    try:
        with ImputeClient(f"127.0.0.1:{server.grpc_port}") as client:
            imputed = client.impute("dmfa_digits", incomplete[:5])
            proba = client.predict_proba("misconv_digits", incomplete[:5])
    finally:
        server.stop()
    np.testing.assert_allclose(imputed, dmfa.transform(incomplete[:5]), rtol=1e-5, atol=1e-5)
    observed = ~np.isnan(incomplete[:5])
    np.testing.assert_array_equal(imputed[observed], incomplete[:5][observed])
    assert proba.shape == (5, 10)
    np.testing.assert_allclose(proba, classifier.predict_proba(incomplete[:5]), rtol=1e-4, atol=1e-5)


def test_section_classifiers_start_from_pytorchs_default_weights():
    """Every kernel of section 1.2's classifiers is drawn from U(+-1/sqrt(fan_in)) as in the authors' PyTorch
    code (`torch_default_init` says why: He-normal let Adam kill the lin_20 units behind a wide flatten).
    He-normal draws would exceed the bound; too narrow a draw would not approach it."""
    import keraszoo

    for name, params in (("misconv_zero", {}), ("misconv_mask", {}), ("misconv_pc", {}), ("misconv", {}), ("misconv", {"first_layer": "dmfa_mean"})):
        model = keraszoo.get_model(name, n_classes=10, seed=3, **params)
        model.build((None, 28, 28, 1))
        kernels = [w for w in model.first.weights + model.body.weights if "kernel" in w.path]
        assert len(kernels) == 6, (name, [w.path for w in kernels])
        for kernel in kernels:
            values = np.asarray(kernel)
            bound = 1.0 / np.sqrt(np.prod(values.shape[:-1]))
            assert np.abs(values).max() <= bound, (name, kernel.path)
            assert np.abs(values).max() > 0.9 * bound, (name, kernel.path)
            assert abs(values.std() - bound / np.sqrt(3.0)) < 0.1 * bound, (name, kernel.path)
