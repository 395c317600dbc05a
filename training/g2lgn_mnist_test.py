"""The Table 2 / Fig. 5 runner end to end on a few MNIST images (a LeNet trained for a moment stands in for the cached one)."""
import numpy as np
import pytest

from training import g2lgn_mnist


@pytest.fixture
def quick_lenet(monkeypatch):
    from keraszoo import fid
    from keraszoo.data import load_dataset
    from keraszoo.data.datasets import DatasetNotFoundError

    try:
        mnist = load_dataset("mnist", download=False)
    except DatasetNotFoundError:
        pytest.skip("MNIST is not on disk (set KERASZOO_DATA_DIR)")
    model, _ = fid.train_lenet(mnist.images[:500] / 255.0, mnist.labels.to_numpy()[:500], epochs=1, seed=0)
    monkeypatch.setattr(fid, "load_lenet", lambda *a, **k: model)


def test_runner_writes_table_csv_and_grid(quick_lenet, tmp_path, capsys):
    out = tmp_path / "t2.md"
    g2lgn_mnist.main(
        ["--rows", "64", "--iterations", "4", "--batch-size", "32", "--models", "zero,mean,gain,g2lgn-wo-lin",
         "--set", "g2lgn-wo-lin.filters=2", "--output", str(out), "--grid", str(tmp_path / "fig5.png")]
    )
    text = out.read_text()
    assert "Command: `python -m training.g2lgn_mnist --rows 64" in text and "truth (floor)" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert {"zero", "mean", "gain", "g2lgn-wo-lin"} <= set(rows)
    assert "'filters': 2" in rows["g2lgn-wo-lin"] and "'use_lin': False" in rows["g2lgn-wo-lin"]
    csv = np.genfromtxt(tmp_path / "t2.csv", delimiter=",", names=True, dtype=None, encoding=None)
    assert len(csv) == 4 and np.all(csv["rmse"] > 0) and np.all(csv["fid"] >= 0)
    zero, mean = (float(csv["rmse"][csv["model"] == m][0]) for m in ("zero", "mean"))
    assert mean < zero  # the mean of observed pixels beats zeros
    assert (tmp_path / "fig5.png").stat().st_size > 1000


def test_bad_arguments_are_named(capsys):
    for argv, message in ((["--models", "gain,nope"], "unknown model label"), (["--set", "x.y=1"], "MODEL among the model labels (zero, mean"),
                          (["--miss-rate", "1.5"], "--miss-rate")):
        with pytest.raises(SystemExit):
            g2lgn_mnist.parse_args(argv)
        assert message in capsys.readouterr().err
