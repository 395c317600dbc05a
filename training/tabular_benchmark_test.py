"""The mixed-type benchmark and calibration runners, on scikit-learn's wine with its cultivar as a category."""
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from training import tabular_benchmark, tabular_calibration


@pytest.fixture
def small_table(monkeypatch):
    data = load_wine(as_frame=True)
    frame = data.data.iloc[:, :5].assign(cultivar=np.array(["barolo", "grignolino", "barbera"])[data.target])
    monkeypatch.setattr(tabular_benchmark, "load_table", lambda name, data_dir=None: frame.copy())
    return frame


def test_dummy_columns_round_trip_and_a_missing_category_hides_all_its_dummies(small_table):
    holed, scored = tabular_benchmark.remove_cells(small_table, 0.2, seed=0)
    table = tabular_benchmark.OneHotTable(holed)
    matrix = table.encode(holed)
    assert matrix.shape == (len(holed), 5 + 2)  # three cultivars: two dummies beside the baseline
    missing_rows = holed["cultivar"].isna().to_numpy()
    assert np.isnan(matrix[missing_rows, 5:]).all() and not np.isnan(matrix[~missing_rows, 5:]).any()
    complete = table.encode(small_table)
    decoded = table.decode(complete, small_table)
    pd.testing.assert_frame_equal(decoded, small_table, check_dtype=False)
    assert scored.sum() > 0 and not scored[~holed.isna().to_numpy()].any()


def test_the_benchmark_scores_every_model_on_the_same_cells_and_writes_its_tables(small_table):
    records = tabular_benchmark.run(["wine"], ["mean_mode", "knn"], [0.2], seeds=2, log=lambda s: None)
    cells = records.groupby(["model", "seed", "column"])["cells"].first().unstack("model")
    assert (cells["mean_mode"] == cells["knn"]).all()  # the same masks for every model
    categorical = records[records["column"] == "cultivar"].set_index(["model", "seed"])
    assert (categorical.loc["knn", "macro_f1"] > categorical.loc["mean_mode", "macro_f1"] + 0.3).all()
    # resuming keeps the runs already made and makes only the missing ones
    calls = []
    first = records[records["seed"] == 0]
    again = tabular_benchmark.run(["wine"], ["mean_mode", "knn"], [0.2], seeds=2, log=calls.append, done=first)
    assert len(calls) == 2 and all("seed 1" in line for line in calls)
    pd.testing.assert_frame_equal(again.drop(columns=["fit_impute_seconds", "impute_10k_seconds"]), records.drop(columns=["fit_impute_seconds", "impute_10k_seconds"]))
    text = tabular_benchmark.markdown(records, "cmd", 1.0, ["mean_mode", "knn"])
    assert "## wine, 20% MCAR" in text and "(n=2)" in text and "| cultivar (F1) |" in text


def test_the_calibration_runner_reports_coverage_and_precision_per_threshold(small_table):
    records = tabular_calibration.run("wine", seeds=1, thresholds=(0.0, 0.9), log=lambda s: None)
    row = records.iloc[0]
    assert row["column"] == "cultivar" and row["coverage@0.0"] == 1.0 and row["coverage@0.9"] <= 1.0
    assert row["accuracy"] > 0.8 and 0 <= row["ece_calibrated"] <= 1
    assert "| cultivar |" in tabular_calibration.markdown(records, "cmd", 1.0, thresholds=(0.0, 0.9))
