import io
import json
import os
from contextlib import redirect_stdout

import numpy as np
import pytest
import tensorflow as tf

from keraszoo.models.base import make_dataset
from keraszoo.models.g2lgn import G2LGN
from keraszoo.testing import check_exported_digit_images, check_keeps_observed_and_draws_differ, mean_imputation, missing_rmse

ABLATIONS = {
    "w/o LIN": dict(use_lin=False),
    "w/o X^": dict(guide_input="noise"),
    "w/o f_search": dict(use_search=False),
    "w/o f_FC": dict(use_fc=False),
    "w/o f_search + w/o f_FC": dict(use_search=False, use_fc=False),
}


@pytest.fixture(scope="module")
def trained(breast_mcar):
    truth, mask = breast_mcar
    model = G2LGN(seed=1)
    model.fit_arrays(truth, mask, iterations=1500)
    return model


def test_g2lgn_beats_mean_imputation_on_real_table(breast_mcar, trained):
    truth, mask = breast_mcar
    rmse = missing_rmse(truth, trained.impute(truth, mask), mask)
    mean_rmse = missing_rmse(truth, mean_imputation(truth, mask), mask)
    assert rmse < 0.75 * mean_rmse, (rmse, mean_rmse)


def test_observed_entries_unchanged_and_draws_differ(breast_mcar, trained):
    check_keeps_observed_and_draws_differ(trained, *breast_mcar)


def test_lin_imputes_the_selected_region_and_gin_the_rest(breast_mcar):
    """Section 2.3: the local result goes back into the region (its missing entries); the rest is GIN's."""
    truth, mask = breast_mcar
    model = G2LGN(partitions=3, seed=2)  # three blocks: the region is one of them
    model.build((None, truth.shape[1]))
    mask = mask[:16].copy()
    mask[:, 20:30] = 0.0  # the third block (columns 20..29) is the most missing in every row
    x = tf.constant(np.where(mask == 1, truth[:16], 0.0))
    out = {k: v.numpy() for k, v in model.complete(x, tf.constant(mask), deterministic=True).items()}
    np.testing.assert_array_equal(out["indices"], np.tile(np.arange(20, 30), (16, 1)))
    completed, global_values = out["completed"], out["global_values"]
    np.testing.assert_allclose(completed[:, 20:30], out["local_values"])  # all missing there: LIN's values
    outside = (mask == 0)
    outside[:, 20:30] = False
    np.testing.assert_array_equal(completed[outside], global_values[outside])
    assert not np.allclose(out["local_values"], global_values[:, 20:30])


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_each_ablation_changes_the_computation(breast_mcar, ablation):
    """Same seed, and the global networks' weights copied over: only the switch differs, and the output does."""
    truth, mask = breast_mcar
    rows, d = truth[:64], truth.shape[1]
    full = G2LGN(seed=5, partitions=3, discriminator="fused")  # blocks, so that the search selects something
    full.build((None, d))
    ablated = G2LGN(seed=5, partitions=3, discriminator="fused", **ABLATIONS[ablation])
    ablated.build((None, d))
    for name in ("global_generator", "global_discriminator", "guide", "local_generator", "local_discriminator", "fusion"):
        source, target = getattr(full, name, None), getattr(ablated, name, None)
        if target is not None and [w.shape for w in source.weights] == [w.shape for w in target.weights]:
            target.set_weights(source.get_weights())
    assert not np.allclose(full.impute(rows, mask[:64]).numpy(), ablated.impute(rows, mask[:64]).numpy())
    params = ABLATIONS[ablation]
    if params.get("use_lin") is False:
        assert not hasattr(ablated, "local_generator") and not hasattr(ablated, "local_discriminator")
    if params.get("use_search") is False:
        assert ablated.local_shape == (d,) and ablated.candidate_regions.shape == (1, d)
    if params.get("use_fc") is False:
        assert [type(layer).__name__ for layer in ablated.guide.layers if type(layer).__name__ != "InputLayer"] == ["Dense"]  # one projection
    if params.get("guide_input") == "noise":
        assert all(np.array_equal(a, b) for a, b in zip(full.get_weights(), ablated.get_weights()))


@pytest.mark.parametrize(
    "shape, params",
    [((30,), {}), ((30,), dict(use_lin=False)), ((30,), dict(discriminator="fused", partitions=3)), ((8, 8, 1), dict(patch_size=4))],
)
def test_train_step_updates_every_weight(breast_mcar, shape, params):
    if len(shape) == 3:
        from keraszoo.testing import image_example

        x, m = image_example(rows=128)
        x = x / 16.0
    else:
        x, m = breast_mcar
    model = G2LGN(**params)
    model.build((None,) + shape)
    model.compile()
    before = [w.numpy().copy() for w in model.trainable_weights]
    batches = iter(make_dataset(x, m, 64))
    # two steps: a fused D's pass-through start gives D_l's block zero weight, so D_l learns from the second
    for _ in range(2):
        logs = model.train_step(next(batches))
    assert set(logs) == {"d_loss", "g_loss", "g_adversarial", "mse_observed", "mse_observed_local"}
    assert all(np.isfinite(float(v)) for v in logs.values())
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]


def test_constructor_rejects_bad_parameters():
    for bad in [
        dict(alpha=-1), dict(hint_rate=2.0), dict(hint_variant="other"), dict(hidden_units=[]), dict(partitions=0),
        dict(patch_size=1.5), dict(guide_channels=0), dict(initializer="he"), dict(guide_input="x"), dict(extra_mask_rate=1.0),
        dict(discriminator="scalar"), dict(fusion_init="zeros"),
    ]:
        with pytest.raises(ValueError):
            G2LGN(**bad)


def test_g2lgn_learns_digit_images_through_training_train_and_exports(tmp_path):
    """Images [N, 8, 8, 1] to the convolutional variant: it beats the mean, and its export imputes images."""
    from training import train

    out = io.StringIO()
    with redirect_stdout(out):
        summary = train.main(
            ["--model", "g2lgn", "--dataset", "digits", "--mechanism", "mcar", "--epochs", "12", "--batch-size", "64",
             "--set", "patch_size=4", "--logdir", str(tmp_path / "logs"), "--export", str(tmp_path / "serving")]
        )
    assert "examples of 8x8x1" in out.getvalue(), out.getvalue()
    assert summary["val_rmse"] < 0.9 * summary["mean_imputation_rmse"], summary
    config = json.load(open(os.path.join(str(tmp_path / "logs"), "config.json")))
    assert config["params"]["patch_size"] == 4, config
    check_exported_digit_images(summary["export_path"])


@pytest.mark.parametrize("shape, params", [((30,), {}), ((30,), dict(discriminator="fused")), ((8, 8, 1), dict(patch_size=8, filters=2))])
def test_whole_example_shortcut_equals_the_general_region_path(breast_mcar, shape, params):
    """A single region covering the example skips gathers and scatters; the result is the general path's."""
    if len(shape) == 3:
        from keraszoo.testing import image_example

        x, m = image_example(rows=16)
        x = x / 16.0
    else:
        x, m = breast_mcar
        x, m = x[:16], m[:16]
    model = G2LGN(seed=4, **params)
    model.build((None,) + shape)
    assert model.whole_region
    x = tf.constant(np.where(m == 1, x, 0.0), tf.float32)
    m = tf.constant(m, tf.float32)
    hint = m * 0.5
    fast = model.complete(x, m, deterministic=True)
    fast_logits = model.discriminate(fast["completed"], hint, fast["local_completed"], fast["indices"]) if model.discriminator == "fused" else None
    model.whole_region = False
    general = model.complete(x, m, deterministic=True)
    for key in fast:
        np.testing.assert_allclose(fast[key].numpy(), general[key].numpy(), rtol=1e-6, atol=1e-6, err_msg=key)
    if fast_logits is not None:
        general_logits = model.discriminate(general["completed"], hint, general["local_completed"], general["indices"])
        np.testing.assert_allclose(fast_logits.numpy(), general_logits.numpy(), rtol=1e-6, atol=1e-6)
