"""The peer imputers (HyperImpute, miceforest) run by `training/peer_worker.py` in `.venv-peers`: the
bridge's errors, the worker's guard against mean imputation, and, where `make peers` was run, a real
benchmark row on the same masks as the zoo's models."""
import os
import sys

import numpy as np
import pytest

from training import benchmark, peer_worker


def test_the_worker_refuses_a_peer_that_returned_the_column_means():
    x = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0]])
    means = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
    with pytest.raises(SystemExit, match="column means"):
        peer_worker.check("hyperimpute", x, means)
    with pytest.raises(SystemExit, match="left 1 entries missing"):
        peer_worker.check("hyperimpute", x, np.where(np.isnan(x), [[9.0, np.nan]], x))
    imputed = peer_worker.check("miceforest", x, np.nan_to_num(x, nan=5.0) + 1e-9)
    assert imputed[0, 0] == 1.0 and imputed[2, 0] == 5.0 + 1e-9  # observed entries as given


def test_a_failing_peer_is_reported_with_its_error(monkeypatch):
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer().data[:50, :4]
    # the project's interpreter has no hyperimpute: the worker's import error comes back in the message
    with pytest.raises(RuntimeError, match="(?s)peer hyperimpute failed .*No module named .hyperimpute"):
        benchmark.run_peer("hyperimpute", table, 0, 0.2, python=sys.executable)


def test_peers_need_their_environment_and_the_transductive_protocol(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERASZOO_PEERS_PYTHON", str(tmp_path / "missing" / "python"))
    for argv, message in (
        (["--models", "mean", "--datasets", "breast", "--peers", "hyperimpute"], "make peers"),
        (["--models", "mean", "--datasets", "breast", "--peers", "datawig"], "unknown peer"),
        (["--models", "mean", "--datasets", "breast", "--peers", "hyperimpute", "--protocol", "holdout"], "transductive"),
    ):
        with pytest.raises(SystemExit):
            benchmark.parse_args(argv)
        assert message in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists(benchmark.peers_python()), reason="no .venv-peers (make peers)")
def test_hyperimpute_runs_on_the_zoos_masks_and_is_listed_with_its_versions(tmp_path):
    output = tmp_path / "peers.md"
    results = benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "1", "--max-rows", "150", "--peers", "hyperimpute", "--output", str(output)])
    peer, mean = results[("hyperimpute (peer)", "breast")][0], results[("mean", "breast")][0]
    assert peer.missing_fraction == mean.missing_fraction  # the same mask
    assert 0 < peer.score < mean.score
    text = output.read_text()
    assert "hyperimpute (peer)" in text and "hyperimpute 0.1.17" in text and "pandas 2." in text


def test_a_peer_that_fails_is_reported_and_skipped_and_the_run_goes_on(tmp_path, monkeypatch):
    """HyperImpute 0.1.17 under scikit-learn 1.8+ fails on credit (LogisticRegression(multi_class=...)): the
    zoo's runs and the other peers must still finish and be written, with the failure in the report."""
    monkeypatch.setenv("KERASZOO_PEERS_PYTHON", sys.executable)
    calls = []

    def fake_peer(method, truth, seed, *args, **kwargs):
        calls.append((method, seed))
        if method == "hyperimpute":
            raise RuntimeError("peer hyperimpute failed (exit 1): Traceback ...\nTypeError: LogisticRegression.__init__() got an unexpected keyword argument 'multi_class'")
        return 0.1 + seed / 100, 1.5, 0.2

    monkeypatch.setattr(benchmark, "run_peer", fake_peer)
    output = tmp_path / "peers.md"
    results = benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "2", "--max-rows", "80", "--peers", "hyperimpute,miceforest",
                              "--output", str(output), "--quiet"])
    assert calls == [("hyperimpute", 0), ("miceforest", 0), ("miceforest", 1)]  # the failed peer's seed 1 is skipped
    assert ("hyperimpute (peer)", "breast") not in results and len(results[("miceforest (peer)", "breast")]) == 2
    assert len(results[("mean", "breast")]) == 2
    text = output.read_text()
    assert "| hyperimpute (peer) | failed | — |" in text and "| miceforest (peer) | 0.1050 ± 0.0071 (n=2) |" in text
    assert "- hyperimpute (peer) on breast: seed 0: TypeError: LogisticRegression.__init__() got an unexpected keyword argument 'multi_class'" in text
    csv_text = (tmp_path / "peers.csv").read_text()
    assert "miceforest (peer)" in csv_text and "hyperimpute (peer)" not in csv_text
