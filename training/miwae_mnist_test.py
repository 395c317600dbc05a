"""The binarised-MNIST runner (miwae.md Fig. 1 and Table 1) end to end on a few images."""
import numpy as np
import pytest

from training import miwae_mnist


def test_static_binarisation_is_fixed_and_follows_the_intensities():
    images = np.random.default_rng(0).integers(0, 256, size=(200, 28, 28)).astype(np.uint8)
    first, again = miwae_mnist.binarise(images), miwae_mnist.binarise(images)
    np.testing.assert_array_equal(first, again)
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert abs(first.mean() - images.mean() / 255.0) < 0.01
    np.testing.assert_array_equal(miwae_mnist.binarise(images[:50]), first[:50])  # a prefix binarises the same
    assert not miwae_mnist.binarise(images[:1] * 0).any() and miwae_mnist.binarise(images[:1] * 0 + 255).all()


def test_runner_writes_fig1_and_table1(mnist_on_disk, tmp_path):
    out = tmp_path / "miwae_mnist.md"
    records = miwae_mnist.main(
        ["--rows", "60", "--test-rows", "30", "--iterations", "3", "--batch-size", "16", "--ll-samples", "4", "--ll-rows", "12", "--sweep", "1,6",
         "--impute-rows", "10", "--imputation-samples", "6", "--draws", "2", "--classifier-seeds", "1", "--classifier-epochs", "2",
         "--classifier-batch-size", "16", "--set", "miwae.latent_dim=3", "--set", "miwae.filters=2", "--set", "miwae.dense_units=8",
         "--set", "missforest.n_estimators=2", "--set", "missforest.max_iter=1", "--set", "missforest.n_jobs=1", "--set", "cnn.filters=[2, 2]", "--set", "cnn.dense_units=4",
         "--output", str(out)]
    )
    text = out.read_text()
    assert text.startswith("# MIWAE on binarised MNIST") and "Command: `python -m training.miwae_mnist --rows 60" in text
    for heading in ("Fig. 1 left", "Fig. 1 right", "Table 1"):
        assert heading in text
    assert "mean over the first 12 test images" in text
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert set(miwae_mnist.VARIANTS) | {"missforest"} | set(miwae_mnist.TABLE_ROWS) <= set(lines)
    assert "0.9868" in lines["missiwae-multiple"]  # the paper's number beside ours
    by_part = {}
    for r in records:
        by_part.setdefault(r["part"], []).append(r)
    # log p of binary pixels: the whole image's below its observed half's
    assert len(by_part["fig1-left"]) == 4 and all(r["value"] < r["extra"] < 0 for r in by_part["fig1-left"])
    assert len(by_part["fig1-right"]) == 2 * 2 + 1 and all(0 <= r["value"] <= 1 for r in by_part["fig1-right"])
    table = by_part["table1"]
    assert len(table) == len(miwae_mnist.TABLE_ROWS) and all(0 <= r["value"] <= 1 and r["extra"] > 0 for r in table)
    csv = np.genfromtxt(tmp_path / "miwae_mnist.csv", delimiter=",", names=True, dtype=None, encoding=None)
    assert len(csv) == len(records)


def test_a_table_cell_is_the_mean_with_its_sample_std_and_count():
    # the runner test uses one classifier seed (each costs a CNN per Table 1 row), so the ± form is checked here
    assert miwae_mnist._mean_std([1.0, 3.0]) == "2.0000 ± 1.4142 (n=2)"
    assert miwae_mnist._mean_std([0.25]) == "0.2500 (n=1)"


def test_a_clone_imputes_with_another_l_and_the_same_weights():
    from keraszoo.models.miwae import MIWAE
    from keraszoo.testing import image_example

    x, mask = image_example(rows=8)
    x = (x / 16.0 > 0.5).astype(np.float32)
    model = MIWAE(observation="bernoulli", latent_dim=2, filters=2, dense_units=4, imputation_samples=5)
    model.fit_arrays(x, mask, iterations=2, batch_size=4)
    clone = miwae_mnist.with_imputation_samples(model, 7)
    assert clone.imputation_samples == 7 and model.imputation_samples == 5
    assert not np.allclose(np.asarray(clone.impute(x, mask)), np.asarray(model.impute(x, mask)))  # another L: other draws
    # the same L: the same fixed-seed draws, so equal imputations mean the same weights in the same places
    np.testing.assert_allclose(np.asarray(miwae_mnist.with_imputation_samples(model, 5).impute(x, mask)), np.asarray(model.impute(x, mask)), rtol=1e-5)


@pytest.mark.parametrize(
    "argv, message",
    [(["--parts", "fig2"], "--parts"), (["--table-rows", "oracle"], "--table-rows"), (["--sweep", "1,x"], "--sweep"),
     (["--set", "gain.x=1"], "MODEL among miwae, missforest, cnn"), (["--set", "miwae.samples=5"], "set by the runner"),
     (["--set", "cnn.seed=1"], "set by the runner"), (["--rows", "1", "--impute-rows", "1"], "--rows must be at least 2"),
     (["--rows", "10", "--impute-rows", "20"], "--impute-rows"), (["--draws", "0"], "--draws"),
     (["--test-rows", "10", "--ll-rows", "11"], "--ll-rows")],
)
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        miwae_mnist.parse_args(argv)
    assert message in capsys.readouterr().err
