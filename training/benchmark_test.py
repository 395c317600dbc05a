"""training.benchmark's sweeps, CSV, plots, progress and bad-input errors, on tiny settings (breast, mean and KNN)."""
import csv
import io

import pytest

from training import benchmark

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_sweep_writes_markdown_csv_and_plots(tmp_path, capsys):
    output = tmp_path / "sweep.md"
    argv = ["--models", "mean,knn", "--datasets", "breast", "--miss-rates", "0.1,0.3", "--dims", "5,10", "--seeds", "2", "--output", str(output)]
    results = benchmark.main(argv)

    runs = results[("knn", "breast")]
    assert sorted({(r.miss_rate, r.dims) for r in runs}) == [(0.1, 5), (0.1, 10), (0.3, 5), (0.3, 10)]
    assert all(0 < r.score < 1 for r in runs)

    with open(tmp_path / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 * 2  # models x rates x dims x seeds
    assert tuple(rows[0]) == ("model", "dataset", "miss_rate", "dims", "seed", "rmse", "fit_seconds", "missing_fraction", "protocol", "mechanism", "mcar_draw", "metric", "norm", "norm_source", "norm_rows", "round_discrete", "max_rows")
    assert {r["dims"] for r in rows} == {"5", "10"} and {r["seed"] for r in rows} == {"0", "1"}
    assert all(0 < float(r["rmse"]) < 1 and float(r["fit_seconds"]) >= 0 for r in rows)

    for name in ("sweep_rmse_vs_missing_rate.png", "sweep_rmse_vs_dims.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000

    text = output.read_text()
    assert f"Command: `python -m training.benchmark {' '.join(argv)}`" in text
    assert "first d feature columns" in text and "Machine:" in text
    assert "| model | 10% | 30% |" in text and "sweep.csv" in text and "(sweep_rmse_vs_dims.png)" in text

    err = capsys.readouterr().err  # not a terminal: one line per run
    assert "[16/16, " in err and "ETA" in err and "breast knn 30% d=10 seed 1: RMSE" in err


def test_single_rate_writes_csv_but_no_plot(tmp_path, capsys):
    output = tmp_path / "one.md"
    benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "1", "--quiet", "--note", "One seed only.", "--output", str(output)])
    assert (tmp_path / "one.csv").read_text().count("\n") == 2  # header + one run
    assert not list(tmp_path.glob("*.png"))
    text = output.read_text()
    assert "Table 1 where it reports the model" in text  # 20%, every column: the paper column stays
    assert "--note 'One seed only.'" in text and "defaults. One seed only.\n" in text
    assert "ETA" not in capsys.readouterr().err  # --quiet


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_redraws_in_place_on_a_terminal():
    stream = _Terminal()
    progress = benchmark.Progress(2, stream=stream)
    progress.start("spam knn 20% d=57 seed 0")
    progress.finish("spam knn 20% d=57 seed 0: RMSE 0.0539 (0.8 s)")
    progress.start("spam knn 20% d=57 seed 1")
    progress.close()
    text = stream.getvalue()
    assert "\r\033[K[------------------------] 0/2" in text and "| spam knn 20% d=57 seed 0" in text
    assert "1/2 0:00 elapsed, ETA 0:00 | spam knn 20% d=57 seed 1" in text
    assert "[1/2] spam knn 20% d=57 seed 0: RMSE 0.0539 (0.8 s)\n" in text and text.endswith("1/2 runs in 0:00\n")


@pytest.mark.parametrize(
    "argv, messages",
    [
        (["--models", "mean,gan"], ["unknown model 'gan'", "registered models:", "knn", "gain"]),
        (["--datasets", "spambase"], ["unknown dataset 'spambase'", "available:", "spam", "credit"]),
        (["--miss-rates", "0.1,1.5"], ["--miss-rates must each be in (0, 1), got 1.5"]),
        (["--miss-rates", "0.1,ten"], ["--miss-rates expects comma-separated numbers"]),
        (["--miss-rate", "0.2", "--miss-rates", "0.1,0.2"], ["not allowed with argument"]),
        (["--dims", "5,x"], ["--dims expects comma-separated whole numbers"]),
        (["--dims", "0,5"], ["--dims must each be at least 1, got 0"]),
    ],
)
def test_bad_arguments_say_what_is_valid(argv, messages, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    err = capsys.readouterr().err
    assert all(m in err for m in messages), err


def test_too_many_dims_fails_before_any_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--models", "mean", "--datasets", "breast", "--dims", "5,31", "--output", str(tmp_path / "x.md")])
    assert "--dims 31 is more than dataset 'breast' has (30 feature columns); valid: breast: 1..30" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_round_discrete_rounds_only_columns_with_few_levels():
    import numpy as np

    few = np.array([0.0, 1.5, 2.0, np.nan, 1.5, 3.0])  # 4 distinct observed values, one not an integer
    many = np.array([0.0, 0.2, np.nan, 0.6, 0.8, 1.0])  # 5 distinct: continuous for max_levels=5
    incomplete = np.column_stack([few, many])
    imputed = np.column_stack([[0.0, 1.5, 2.0, 1.6, 1.5, 3.0], [0.0, 0.2, 0.43, 0.6, 0.8, 1.0]])
    rounded = benchmark.round_discrete_columns(imputed, incomplete, incomplete, max_levels=5)
    np.testing.assert_array_equal(rounded[:, 0], [0.0, 1.5, 2.0, 2.0, 1.5, 3.0])  # only the imputed entry; observed 1.5 kept
    np.testing.assert_array_equal(rounded[:, 1], imputed[:, 1])
    assert imputed[3, 0] == 1.6  # the input is not modified


def test_round_discrete_flag_is_applied_and_reported(tmp_path):
    # digits' pixels take the values 0..16 only, so every column is discrete: rounding changes the score.
    plain = benchmark.main(["--models", "mean", "--datasets", "digits", "--seeds", "1", "--quiet", "--output", str(tmp_path / "a.md")])
    argv = ["--models", "mean", "--datasets", "digits", "--seeds", "1", "--quiet", "--round-discrete", "--output", str(tmp_path / "b.md")]
    rounded = benchmark.main(argv)
    assert plain[("mean", "digits")][0].score != rounded[("mean", "digits")][0].score
    assert "rounded to integers before scoring" in (tmp_path / "b.md").read_text()
    assert "rounded to integers" not in (tmp_path / "a.md").read_text()
