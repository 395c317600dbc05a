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
