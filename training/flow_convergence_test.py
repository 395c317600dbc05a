"""training.flow_convergence (emflow.md Fig. 2) on a tiny setting: the report, curves and plot it writes."""
import csv

import numpy as np
import pytest

from training import flow_convergence


def test_converged_at_is_the_first_time_after_which_the_score_stays_within_tolerance():
    seconds = [1, 2, 3, 4, 5]
    assert flow_convergence.converged_at(seconds, [0.2, 0.1001, 0.12, 0.1005, 0.1]) == 4  # 0.12 leaves the 1% band
    assert flow_convergence.converged_at(seconds, [0.1, 0.1, 0.1, 0.1, 0.1]) == 1
    assert flow_convergence.converged_at(seconds, [0.3, 0.2, 0.15, 0.12, 0.1]) == 5


def test_writes_the_report_curves_and_plot_with_a_ratio(tmp_path):
    output = tmp_path / "convergence.md"
    summaries = flow_convergence.main([
        "--dataset", "breast", "--iterations", "100", "--set", "emflow.coupling_pairs=1", "--set", "emflow.hidden_units=[8]",
        "--set", "mcflow.coupling_pairs=1", "--set", "mcflow.hidden_units=[8]", "--set", "emflow.rounds=2", "--output", str(output),
    ])
    text = output.read_text()
    assert "Convergence-time ratio MCFlow / EMFlow" in text and "python -m training.flow_convergence --dataset breast" in text
    with open(tmp_path / "convergence.csv") as f:
        rows = list(csv.DictReader(f))
    for model in ("emflow", "mcflow"):
        points = [r for r in rows if r["model"] == model]
        seconds = np.array([float(r["seconds"]) for r in points])
        assert len(points) == summaries[model]["epochs"] >= 2 and (np.diff(seconds) > 0).all()
        assert summaries[model]["final_rmse"] == pytest.approx(float(points[-1]["rmse"]), abs=1e-6)
        assert 0 < summaries[model]["best_rmse"] <= summaries[model]["final_rmse"] < 0.5
    assert (tmp_path / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_are_usage_errors(capsys):
    with pytest.raises(SystemExit):
        flow_convergence.parse_args(["--models", "emflow,mean"])
    assert "'mean' is not a registered deep model" in capsys.readouterr().err
