"""The Table 1 runner on a few MNIST images: every requested model is scored on every task, gt once.

Between them the two tests run every branch of `run_task` (zero/mask/pc share one) on all three tasks with
12 trainings: the first-layer and kNN models on square and trapezoid (whose common centre no image sees),
the WAE by `--resume`, and one DMFA shared by misconv and dmfa_mean on square and noise."""
import os

import pytest

from training import misconv_mnist

DATA = os.environ.get("KERASZOO_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.mark.skipif(not os.path.exists(os.path.join(DATA, "mnist.npz")), reason="MNIST is not on disk")
def test_the_table_1_runner_scores_each_model_on_each_task(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASZOO_DATA_DIR", DATA)
    monkeypatch.setenv("KERASZOO_OFFLINE", "1")
    output = tmp_path / "table1.md"
    records = misconv_mnist.main(
        ["--tasks", "square,trapezoid", "--models", "zero,knn,gt", "--wae-epochs", "1", "--seeds", "1", "--train-rows", "128", "--test-rows", "48", "--classifier-epochs", "1", "--output", str(output)]
    )
    assert sorted((r["task"], r["model"]) for r in records) == sorted((t, m) for t in ("square", "trapezoid") for m in ("zero", "knn", "gt"))
    gt = [r["accuracy"] for r in records if r["model"] == "gt"]
    assert gt[0] == gt[1] and all(0 <= r["accuracy"] <= 1 for r in records)
    text = output.read_text()
    assert "| zero |" in text and "paper 0.91" in text and "reduced" not in text and "paper's protocol" in text
    # --resume keeps the records beside the table and runs only the missing (task, seed, model)s
    base = ["--seeds", "1", "--wae-epochs", "1", "--train-rows", "128", "--test-rows", "48", "--classifier-epochs", "1", "--output", str(output), "--resume"]
    resumed = misconv_mnist.main(["--tasks", "square", "--models", "zero,wae,gt", *base])
    assert resumed[: len(records)] == [dict(r, protocol=resumed[0]["protocol"], command=resumed[0]["command"]) for r in records]
    assert sorted((r["task"], r["model"]) for r in resumed[len(records):]) == [("square", "wae")]
    assert "Commands: " in output.read_text() and "| wae |" in output.read_text()
    with pytest.raises(SystemExit, match="another protocol"):
        misconv_mnist.main(["--tasks", "square", "--models", "zero", *base[:-1], "--resume", "--classifier-epochs", "2"])


@pytest.mark.skipif(not os.path.exists(os.path.join(DATA, "mnist.npz")), reason="MNIST is not on disk")
def test_the_runner_shares_one_dmfa_per_seed_between_misconv_dmfa_mean_and_the_tasks(monkeypatch):
    monkeypatch.setenv("KERASZOO_DATA_DIR", DATA)
    monkeypatch.setenv("KERASZOO_OFFLINE", "1")
    trained = []
    real = misconv_mnist.train_dmfa
    monkeypatch.setattr(misconv_mnist, "train_dmfa", lambda *a, **k: trained.append(a[0]) or real(*a, **k))
    records = misconv_mnist.main(
        ["--tasks", "square,noise", "--models", "dmfa_mean,misconv", "--seeds", "1", "--train-rows", "96", "--test-rows", "48",
         "--classifier-epochs", "1", "--dmfa-epochs", "1", "--dmfa-filters", "2,2,2,2", "--dmfa-learning-rate", "1e-3"]
    )
    assert trained == [0]  # one DMFA for seed 0, used by both models on both tasks
    assert sorted((r["task"], r["model"]) for r in records) == sorted((t, m) for t in ("square", "noise") for m in ("dmfa_mean", "misconv"))
    assert all(0 <= r["accuracy"] <= 1 for r in records)
