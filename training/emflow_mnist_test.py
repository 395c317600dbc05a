"""The MNIST runner (emflow.md Tables 2 and 3) end to end on a few images."""
import csv

import numpy as np
import pytest

from training import emflow_mnist


def test_masks_are_fixed_per_rate_and_seed_and_have_the_rate():
    train, test = emflow_mnist.masks((400, 28, 28), (100, 28, 28), 0.3, 0)
    again, _ = emflow_mnist.masks((400, 28, 28), (100, 28, 28), 0.3, 0)
    other, _ = emflow_mnist.masks((400, 28, 28), (100, 28, 28), 0.3, 1)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other) and abs(1 - train.mean() - 0.3) < 0.01 and abs(1 - test.mean() - 0.3) < 0.01


def test_runner_writes_tables_2_and_3(mnist_on_disk, tmp_path, monkeypatch):
    import keraszoo.fid as fid

    train, test, labels = emflow_mnist.load_mnist(emflow_mnist.parse_args(["--rows", "300", "--test-rows", "60"]))
    quick, _ = fid.train_lenet(train, np.asarray(__import__("keraszoo.data", fromlist=["load_dataset"]).load_dataset("mnist").labels)[:300],
                               epochs=1)
    monkeypatch.setattr(fid, "load_lenet", lambda **_: quick)  # the cached LeNet takes minutes to train the first time
    out = tmp_path / "emflow_mnist.md"
    # MCFlow stands in for the flows here: EMFlow's per-row conditional Gaussian on 784 pixels (a 784 x 784
    # Cholesky per image) takes minutes on a CPU even for a few images
    records = emflow_mnist.main(["--rows", "300", "--test-rows", "60", "--miss-rates", "0.3,0.6", "--models", "mean,mcflow",
                                 "--iterations", "4", "--set", "mcflow.coupling_pairs=1", "--set", "mcflow.hidden_units=[16]",
                                 "--set", "mcflow.latent_layers=1", "--output", str(out)])
    text = out.read_text()
    assert "## Table 2" in text and "## Table 3" in text
    assert "| mcflow (paper) | 0.0894 | 0.1119 |" in text and "| mcflow (paper) | 0.9878 | 0.9806 |" in text  # Tables 2 and 3 at 0.3, 0.6
    assert emflow_mnist.parse_args(["--models", "emflow"]).params["emflow"] == {"alpha": 5e8, "super_batches": 12}  # Sec. 4.2
    assert len(records) == 4 and all(0 < r["rmse"] < 0.6 and 0 <= r["accuracy"] <= 1 for r in records)
    with open(tmp_path / "emflow_mnist.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    mean_rmse = {r["rate"]: r["rmse"] for r in records if r["model"] == "mean"}
    assert mean_rmse[0.6] > 0.2  # mean imputation of MNIST pixels is poor: the table is on the pixel scale


def test_bad_arguments_are_usage_errors(capsys):
    for argv, message in ((["--models", "cnn"], "'cnn' is not a registered imputer"), (["--miss-rates", "0.2,1.0"], "in (0, 1)"),
                          (["--rows", "0"], "--rows must be positive")):
        with pytest.raises(SystemExit):
            emflow_mnist.parse_args(argv)
        assert message in capsys.readouterr().err
