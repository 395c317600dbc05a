"""training.benchmark's sweeps, CSV, plots, progress, bad-input errors and switches (protocols, masks,
metrics, units, statistics), images given as images to image models, and classifiers scored by
accuracy, on tiny settings (breast or digits, mean and KNN, the toy models of tests/test_contract_toys.py,
1-2 seeds)."""
import csv
import io
import math
import os

import numpy as np
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
    assert tuple(rows[0]) == ("model", "dataset", "miss_rate", "dims", "seed", "rmse", "accuracy", "fit_seconds", "missing_fraction", "protocol", "mechanism", "mcar_draw", "metric", "norm", "norm_source", "norm_rows", "round_discrete", "max_rows")
    assert {r["dims"] for r in rows} == {"5", "10"} and {r["seed"] for r in rows} == {"0", "1"}
    assert all(0 < float(r["rmse"]) < 1 and r["accuracy"] == "" and float(r["fit_seconds"]) >= 0 for r in rows)

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


def test_progress_bar_redraws_in_place_on_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # lines are cut to the terminal's width, which differs between runners
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
        (["--models", "knn:k 1"], ["a variant is NAME:LABEL with LABEL of letters, digits", "'knn:k 1'"]),
        (["--models", "knn:"], ["a variant is NAME:LABEL"]),
        (["--models", "knnx:k1"], ["unknown model 'knnx'"]),
        (["--models", "knn", "--set", "knn:k1.n_neighbors=1"], ["--set expects MODEL.PARAM=VALUE with MODEL among --models"]),
    ],
)
def test_bad_arguments_say_what_is_valid(argv, messages, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    err = capsys.readouterr().err
    assert all(m in err for m in messages), err


def test_variants_of_one_model_are_rows_of_their_own_with_their_own_parameters(tmp_path):
    output = tmp_path / "variants.md"
    argv = ["--models", "knn,knn:k1,knn:k20", "--datasets", "breast", "--seeds", "2", "--quiet", "--output", str(output)]
    results = benchmark.main(argv + ["--set", "knn:k1.n_neighbors=1", "--set", "knn:k20.n_neighbors=20"])
    truth = _breast()
    for label, params in (("knn", {}), ("knn:k1", {"n_neighbors": 1}), ("knn:k20", {"n_neighbors": 20})):
        by_hand = [benchmark.run_one("knn", params, truth, seed, 0.2)[0] for seed in range(2)]
        assert [r.score for r in results[(label, "breast")]] == pytest.approx(by_hand, rel=1e-9), label
    assert len({results[(label, "breast")][0].score for label in ("knn", "knn:k1", "knn:k20")}) == 3
    text = output.read_text()
    assert "| knn:k1 |" in text and "| knn:k20 |" in text
    assert [row.split(",")[0] for row in (tmp_path / "variants.csv").read_text().splitlines()[1:]].count("knn:k1") == 2


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


# --------------------------------------------------------------------------------------------------
# switches
def _breast():
    from keraszoo.data import load_dataset

    return load_dataset("breast").numeric_array()


def _observed_means(truth, mask):
    return np.array([truth[mask[:, j] == 1, j].mean() for j in range(truth.shape[1])])


def test_default_run_is_gains_protocol_by_hand():
    from keraszoo.data import mcar_mask

    truth = _breast()
    score, _, missing = benchmark.run_one("mean", {}, truth, 0, 0.2)
    mask = mcar_mask(truth.shape, 0.2, seed=0)
    imputed = np.where(mask == 1, truth, _observed_means(truth, mask))
    span = truth.max(0) - truth.min(0)
    expected = np.sqrt(np.sum(((1 - mask) * (imputed - truth) / span) ** 2) / np.sum(1 - mask))
    assert score == pytest.approx(expected, rel=1e-6)
    assert missing == pytest.approx(1 - mask.mean(dtype=np.float64), abs=1e-12)


def test_std_is_the_sample_std_with_the_number_of_seeds(tmp_path):
    runs = [benchmark.Run(score, 0.0, 0.2, 30, seed, 0.2) for seed, score in enumerate([1.0, 2.0, 4.0])]
    # ddof = 1: sqrt(((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2) = 1.5275; ddof = 0 would give 1.2472
    assert benchmark._mean_std(runs) == "2.3333 ± 1.5275 (n=3)"
    assert benchmark._mean_std(runs[:1]) == "1.0000 (n=1)"
    assert benchmark.sample_std([1.0, 2.0]) == pytest.approx(np.std([1.0, 2.0], ddof=1)) and benchmark.sample_std([3.0]) == 0.0
    output = tmp_path / "std.md"
    results = benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "2", "--quiet", "--output", str(output)])
    scores = [r.score for r in results[("mean", "breast")]]
    cell = f"{np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f} (n=2)"
    assert f"| mean | {cell} |" in output.read_text()
    assert f"{np.std(scores):.4f} (n=2)" not in output.read_text()  # not the population std


@pytest.mark.parametrize("n", [23, 569])
def test_kfold_splits_are_mcflows_folds_of_a_seeded_shuffle(n):
    size = int(n / 5)
    for seed in range(7):
        fit, test = benchmark.split_rows(n, seed, "kfold")
        k = seed % 5
        order = np.random.default_rng(seed).permutation(n)
        expected = order[k * size:] if k == 4 else order[k * size:(k + 1) * size]
        np.testing.assert_array_equal(test, expected)
        assert len(test) == (n - 4 * size if k == 4 else size)
        assert not set(fit) & set(test) and sorted(set(fit) | set(test)) == list(range(n))
    # different seeds shuffle differently: the test folds of seeds 0..4 are not a partition
    tests = [set(benchmark.split_rows(n, seed, "kfold")[1]) for seed in range(5)]
    assert sum(len(t) for t in tests) == n and len(set().union(*tests)) < n
    fit, test = benchmark.split_rows(n, 0, "holdout")
    assert len(fit) == int(0.8 * n) and not set(fit) & set(test)


def _row_keys(x):
    return {row.tobytes() for row in np.nan_to_num(np.asarray(x, dtype=np.float64), nan=-12345.0)}


@pytest.mark.parametrize("protocol, n_scored", [("kfold", 113), ("holdout", 569 - int(0.8 * 569)), ("transductive", 569)])
def test_scored_rows_are_never_fitted_on_outside_transductive(protocol, n_scored, monkeypatch, tmp_path):
    from keraszoo.sklearn import ZooImputer

    seen = {"fit": [], "transform": []}
    fit, transform = ZooImputer.fit, ZooImputer.transform

    def spy_fit(self, X, y=None, callbacks=None):
        seen["fit"].append(np.array(X))
        return fit(self, X, y, callbacks=callbacks)

    def spy_transform(self, X):
        seen["transform"].append(np.array(X))
        return transform(self, X)

    monkeypatch.setattr(ZooImputer, "fit", spy_fit)
    monkeypatch.setattr(ZooImputer, "transform", spy_transform)
    argv = ["--models", "mean,knn", "--datasets", "breast", "--seeds", "2", "--protocol", protocol, "--quiet", "--output", str(tmp_path / "p.md")]
    results = benchmark.main(argv)
    assert len(seen["fit"]) == len(seen["transform"]) == 4
    for fitted, scored in zip(seen["fit"], seen["transform"]):
        assert len(scored) == n_scored and len(fitted) == (569 if protocol == "transductive" else 569 - n_scored)
        overlap = _row_keys(fitted) & _row_keys(scored)
        assert (len(overlap) == 569) if protocol == "transductive" else not overlap
    assert all(0 < r.score < 1 for r in results[("knn", "breast")])


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_count_mcar_removes_exactly_floor_n_p_rate_entries(rate, tmp_path):
    n, p = 569, 30
    exact = math.floor(n * p * rate)
    counts = {"count": [], "bernoulli": []}
    for seed in range(3):
        counts["count"].append(int((benchmark.mcar_count_mask((n, p), rate, seed) == 0).sum()))
        counts["bernoulli"].append(int((benchmark.draw_mask(np.zeros((n, p)), seed, rate) == 0).sum()))
    assert counts["count"] == [exact] * 3
    assert counts["bernoulli"] != [exact] * 3  # the default draw is not exact: the switch matters
    argv = ["--models", "mean", "--datasets", "breast", "--seeds", "2", "--mcar-draw", "count", "--miss-rate", str(rate), "--quiet",
            "--output", str(tmp_path / "c.md")]
    runs = benchmark.main(argv)[("mean", "breast")]
    assert [round(r.missing_fraction * n * p) for r in runs] == [exact, exact]
    assert runs[0].score != runs[1].score
    masks = [benchmark.mcar_count_mask((n, p), rate, seed) for seed in (0, 1)]
    assert not np.array_equal(masks[0], masks[1])  # uniformly chosen, per seed


def test_zscore_mse_equals_a_hand_computation(tmp_path):
    from keraszoo.data import mcar_mask

    truth = _breast()
    argv = ["--models", "mean", "--datasets", "breast", "--seeds", "1", "--miss-rate", "0.5", "--metric", "mse", "--norm", "zscore",
            "--quiet", "--output", str(tmp_path / "z.md")]
    score = benchmark.main(argv)[("mean", "breast")][0].score
    mask = mcar_mask(truth.shape, 0.5, seed=0)
    imputed = np.where(mask == 1, truth, _observed_means(truth, mask))
    z = lambda v: (v - truth.mean(0)) / truth.std(0)  # noqa: E731  MIWAE: z-score of the complete data, numpy's std (ddof 0)
    expected = np.sum((1 - mask) * (z(imputed) - z(truth)) ** 2) / np.sum(1 - mask)
    assert score == pytest.approx(expected, rel=1e-6)
    rmse_score = benchmark.run_one("mean", {}, truth, 0, 0.5)[0]
    assert score != pytest.approx(rmse_score**2, rel=1e-3)  # other units, not just the square of the default
    mae = benchmark.run_one("mean", {}, truth, 0, 0.5, {"metric": "mae"})[0]
    span = truth.max(0) - truth.min(0)
    assert mae == pytest.approx(np.sum((1 - mask) * np.abs(imputed - truth) / span) / np.sum(1 - mask), rel=1e-6)
    text = (tmp_path / "z.md").read_text()
    assert text.startswith("# MSE on UCI tables, 50% MCAR") and "`--metric mse`" in text and "`--norm zscore`" in text
    assert (tmp_path / "z.csv").read_text().splitlines()[0].split(",")[5] == "mse"


def test_observed_min_max_differs_from_the_truths_when_they_differ():
    from keraszoo.data import mcar_mask

    truth = _breast()
    mask = mcar_mask(truth.shape, 0.2, seed=0)
    observed = np.where(mask == 1, truth, np.nan)
    lo, hi = np.nanmin(observed, 0), np.nanmax(observed, 0)
    assert np.any((lo != truth.min(0)) | (hi != truth.max(0)))  # the mask removed some column's min or max
    imputed = np.where(mask == 1, truth, _observed_means(truth, mask))
    expected = np.sqrt(np.sum(((1 - mask) * (imputed - truth) / (hi - lo)) ** 2) / np.sum(1 - mask))
    by_observed = benchmark.run_one("mean", {}, truth, 0, 0.2, {"norm_source": "observed"})[0]
    by_truth = benchmark.run_one("mean", {}, truth, 0, 0.2)[0]
    assert by_observed == pytest.approx(expected, rel=1e-6)
    assert by_observed > by_truth  # observed ranges are narrower, so the same errors weigh more


def test_norm_rows_all_scales_the_test_rows_with_the_whole_table():
    truth = _breast()
    scored = benchmark.run_one("mean", {}, truth, 0, 0.2, {"protocol": "kfold"})[0]
    whole = benchmark.run_one("mean", {}, truth, 0, 0.2, {"protocol": "kfold", "norm_rows": "all"})[0]
    mask = benchmark.draw_mask(truth, 0, 0.2)
    fit, test = benchmark.split_rows(len(truth), 0, "kfold")
    imputed = np.where(mask[test] == 1, truth[test], _observed_means(truth[fit], mask[fit]))
    m = mask[test]
    for span, score in ((truth.max(0) - truth.min(0), whole), (truth[test].max(0) - truth[test].min(0), scored)):
        assert score == pytest.approx(np.sqrt(np.sum(((1 - m) * (imputed - truth[test]) / span) ** 2) / np.sum(1 - m)), rel=1e-6)
    assert whole < scored
    same = [benchmark.run_one("mean", {}, truth, 0, 0.2, {"norm_rows": rows})[0] for rows in ("scored", "all")]
    assert same[0] == same[1]  # transductive: every row is scored


def test_mar_literal_calibrated_and_emflow_rates():
    truth = _breast()
    first = math.floor(0.7 * truth.shape[1])  # 21 columns always observed
    literal = benchmark.draw_mask(truth, 0, "eq26", "mar")
    calibrated = benchmark.draw_mask(truth, 0, 0.3, "mar")
    for mask in (literal, calibrated):
        assert mask[:, :first].min() == 1
    assert (1 - literal[:, first:]).mean() > 0.5  # eq. 26 on min-max data: every probability >= 0.5
    assert (1 - calibrated[:, first:]).mean() == pytest.approx(0.3, abs=0.03)
    assert benchmark.resolve_rate("emflow", "mar", "letter") == 0.57 and benchmark.resolve_rate("eq26", "mar", "letter") is None
    cut = benchmark.draw_mask(truth, 0, 0.3, "mar", dims=10)  # drawn on the 10 columns used
    assert cut.shape == (569, 10) and cut[:, :7].min() == 1 and cut[:, 7:].min() == 0


def test_mar_and_mnar_runs_report_their_rates(tmp_path):
    out = tmp_path / "mar.md"
    runs = benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "1", "--mechanism", "mar", "--quiet", "--output", str(out)])
    assert runs[("mean", "breast")][0].miss_rate == "eq26"
    text = out.read_text()
    assert "eq. 26 MAR" in text and "`--mechanism mar`" in text and "eq26 is eq. 26 as written" in text
    assert "so no paper column" in text and "(paper)" not in text  # no Table 1 column under MAR
    runs = benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "1", "--mechanism", "mnar", "--miss-rate", "0.3",
                           "--quiet", "--output", str(tmp_path / "mnar.md")])
    assert runs[("mean", "breast")][0].missing_fraction == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize("mechanism, fraction", [("square", 0.25), ("noise", 0.75)])
def test_image_masks_on_digits(mechanism, fraction, tmp_path):
    out = tmp_path / "img.md"
    argv = ["--models", "mean,knn", "--datasets", "digits", "--seeds", "2", "--mechanism", mechanism, "--max-rows", "200", "--quiet",
            "--output", str(out)]
    results = benchmark.main(argv)
    for runs in results.values():
        assert [r.missing_fraction for r in runs] == [fraction, fraction] and [r.dims for r in runs] == [64, 64]
    from keraszoo.data import load_dataset

    images = benchmark.subset_rows(load_dataset("digits").images.astype(np.float64), 200)
    mask = benchmark.draw_mask(images, 0, fraction, mechanism)
    assert mask.shape == (200, 8, 8) and np.all((1 - mask).sum(axis=(1, 2)) == fraction * 64)  # per image
    if mechanism == "square":  # one 4x4 block per image
        rows = (1 - mask).any(axis=2).sum(axis=1)
        assert np.all(rows == 4)
    # The runner scores the images as rows of 64 pixels: the same score as a hand computation on [N, 8, 8].
    flat = mask.reshape(200, -1)
    means = _observed_means(images.reshape(200, -1), flat).reshape(8, 8)
    imputed = np.where(mask == 1, images, means)
    span = images.max(0) - images.min(0)
    span[span == 0] = 1.0
    expected = np.sqrt(np.sum(((1 - mask) * (imputed - images) / span) ** 2) / np.sum(1 - mask))
    assert results[("mean", "digits")][0].score == pytest.approx(expected, rel=1e-6)
    assert all(0 < r.score < 1 for r in results[("knn", "digits")])
    text = out.read_text()
    assert f"on images, {fraction * 100:g}% {mechanism} image masks" in text and "`--max-rows`: 200" in text


def test_every_switch_is_printed_in_every_file(tmp_path):
    out = tmp_path / "all.md"
    argv = ["--models", "mean,knn", "--datasets", "breast", "--seeds", "2", "--miss-rates", "0.2,0.4", "--protocol", "kfold",
            "--mcar-draw", "count", "--metric", "mae", "--norm", "zscore", "--norm-source", "observed", "--norm-rows", "all",
            "--round-discrete", "--max-rows", "300", "--quiet", "--output", str(out)]
    benchmark.main(argv)
    text = out.read_text()
    for flag in ("`--protocol kfold`", "`--mcar-draw count`", "`--miss-rates 0.2,0.4`", "`--metric mae`", "`--norm zscore`",
                 "`--norm-source observed`", "`--norm-rows all`", "`--round-discrete`: on", "`--max-rows`: 300", "`--seeds 2`"):
        assert flag in text, flag
    assert "(n=2)" in text and "paper" not in text.split("### breast")[1]
    with open(tmp_path / "all.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 and "mae" in rows[0]
    assert {(r["protocol"], r["mechanism"], r["mcar_draw"], r["metric"], r["norm"], r["norm_source"], r["norm_rows"], r["round_discrete"],
             r["max_rows"]) for r in rows} == {("kfold", "mcar", "count", "mae", "zscore", "observed", "all", "True", "300")}
    assert (tmp_path / "all_mae_vs_missing_rate.png").read_bytes().startswith(PNG_MAGIC)
    args = benchmark.parse_args(argv)
    summary = benchmark.settings_summary(args)
    for name, flag, _ in benchmark.SWITCHES:
        assert flag[2:] + "=" in summary
    assert benchmark.default_output(args) == os.path.join(
        "benchmarks", "results", "uci_mcar_rates_kfold_count_mae_zscore_observed_allrows_rounded_rows300.md")
    assert benchmark.default_output(benchmark.parse_args([])) == os.path.join("benchmarks", "results", "uci_mcar20.md")


def test_defaults_print_their_switches_too(tmp_path):
    out = tmp_path / "d.md"
    benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "1", "--quiet", "--output", str(out)])
    text = out.read_text()
    assert text.startswith("# RMSE on UCI tables, 20% MCAR (transductive protocol)")
    for flag in ("`--protocol transductive`", "`--mechanism mcar`", "`--mcar-draw bernoulli`", "`--miss-rate 0.2`", "`--metric rmse`",
                 "`--norm minmax`", "`--norm-source truth`", "`--norm-rows scored`", "`--round-discrete`: off", "`--max-rows`: all rows"):
        assert flag in text, flag


def test_max_rows_is_a_fixed_subset_in_file_order():
    table = np.arange(100.0).reshape(50, 2)
    sub = benchmark.subset_rows(table, 20)
    assert sub.shape == (20, 2) and np.all(np.diff(sub[:, 0]) > 0)
    np.testing.assert_array_equal(sub, benchmark.subset_rows(table, 20))
    assert benchmark.subset_rows(table, None) is table and benchmark.subset_rows(table, 80) is table


def test_label_feature_appends_the_numeric_label_as_the_last_column_and_says_so(tmp_path, capsys):
    import pandas as pd

    from keraszoo.data import load_dataset

    args = benchmark.parse_args(["--datasets", "breast,wine_sklearn", "--label-feature", "wine_sklearn"])
    tables = benchmark.load_tables(args)
    wine = load_dataset("wine_sklearn")
    assert tables["breast"].shape == (569, 30) and tables["wine_sklearn"].shape == (178, 14)
    np.testing.assert_array_equal(tables["wine_sklearn"][:, -1], wine.labels.to_numpy(dtype=float))
    np.testing.assert_array_equal(tables["wine_sklearn"][:, :-1], wine.numeric_array())
    out = tmp_path / "label.md"
    benchmark.main(["--models", "mean", "--datasets", "wine_sklearn", "--label-feature", "wine_sklearn", "--seeds", "1", "--quiet",
                    "--output", str(out)])
    assert "except for wine_sklearn, whose numeric label is its last feature" in out.read_text()
    with pytest.raises(SystemExit):
        benchmark.with_label_column(np.zeros((2, 1)), pd.Series(["A", "B"]), "letter")
    assert "--label-feature letter: its label is not numeric" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--mechanism", "mar", "--mcar-draw", "count"], "--mcar-draw count applies to --mechanism mcar only"),
        (["--miss-rate", "eq26"], "--miss-rate eq26 applies to --mechanism mar only"),
        (["--mechanism", "mar", "--datasets", "breast", "--miss-rate", "emflow"], "EMFlow's Table 4 gives no MAR missing rate for data set 'breast'"),
        (["--mechanism", "mar", "--miss-rates", "0.2,often"], "--miss-rates expects comma-separated numbers (or the words eq26, emflow"),
        (["--mechanism", "square", "--dims", "5"], "--dims does not apply to image masks"),
        (["--max-rows", "5"], "--max-rows must be at least 10"),
        (["--datasets", "breast", "--label-feature", "wine"], "--label-feature wine: not one of --datasets (breast)"),
        (["--protocol", "fivefold"], "invalid choice: 'fivefold'"),
        (["--norm-source", "complete"], "invalid choice: 'complete'"),
    ],
)
def test_bad_switches_say_what_is_valid(argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    assert message in capsys.readouterr().err


def test_image_mechanism_needs_image_data_before_any_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--models", "mean", "--datasets", "breast", "--mechanism", "square", "--output", str(tmp_path / "x.md")])
    assert "--mechanism square needs image data sets; 'breast' has no images" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------------------------
# image models and classifiers: the toy models of tests/test_contract_toys.py, registered here for this
# module's tests only
TOY_CLASSIFIER_SET = ["--set", "toy_classifier.iterations=40", "--set", "toy_classifier.batch_size=32"]
TOY_IMAGE_SET = ["--set", "toy_image_imputer.iterations=10", "--set", "toy_image_imputer.batch_size=16"]


@pytest.fixture(scope="module")
def toys():
    from keraszoo import registry
    from tests.test_contract_toys import ToyClassifier, ToyImageImputer

    names = {"toy_image_imputer": ToyImageImputer, "toy_classifier": ToyClassifier}
    for name, cls in names.items():
        registry.register_model(name)(cls)
    yield
    for name in names:
        registry.unregister_model(name)


def _breast_labels():
    from keraszoo.data import load_dataset

    return load_dataset("breast").labels.to_numpy()


def _accuracy_section(text):
    return text.split("## Classifiers: accuracy", 1)[1]


def test_classifier_accuracy_equals_zooclassifier_by_hand(toys, tmp_path):
    import keras

    from keraszoo.data import mcar_mask
    from keraszoo.sklearn import ZooClassifier

    out = tmp_path / "clf.md"
    argv = ["--models", "toy_classifier", "--datasets", "breast", "--protocol", "holdout", "--seeds", "2", *TOY_CLASSIFIER_SET,
            "--quiet", "--output", str(out)]
    runs = benchmark.main(argv)[("toy_classifier", "breast")]
    truth, y = _breast(), _breast_labels()
    for seed, run in enumerate(runs):
        mask = mcar_mask(truth.shape, 0.2, seed=seed)  # the imputers' mask and split of that seed
        fit, test = benchmark.split_rows(len(truth), seed, "holdout")
        incomplete = np.where(mask == 1, truth, np.nan)
        keras.utils.set_random_seed(seed)  # as the runner does: the toy's Dense layers draw unseeded initial weights
        clf = ZooClassifier("toy_classifier", iterations=40, batch_size=32, seed=seed).fit(incomplete[fit], y[fit])
        assert run.score == clf.score(incomplete[test], y[test])
        assert run.missing_fraction == pytest.approx(1 - mask.mean(dtype=np.float64), abs=1e-12)
    majority = max(np.mean(y == 0), np.mean(y == 1))  # 0.63 on breast: an accuracy, not 1 - RMSE
    assert all(majority + 0.1 < r.score <= 1 for r in runs) and runs[0].score != runs[1].score
    text = out.read_text()
    assert text.startswith("# Accuracy on UCI tables, 20% MCAR (holdout protocol)")
    assert "## Imputers" not in text and "lower is better" not in text
    scores = [r.score for r in runs]
    assert f"| toy_classifier | {np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f} (n=2) |" in _accuracy_section(text)
    with open(tmp_path / "clf.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["rmse"], float(r["accuracy"])) for r in rows] == [("", pytest.approx(s, abs=1e-6)) for s in scores]
    assert benchmark.default_output(benchmark.parse_args(argv[:-2])).endswith("uci_mcar20_holdout_accuracy.md")


def test_mixed_imputer_and_classifier_write_two_tables(toys, tmp_path):
    out = tmp_path / "mix.md"
    argv = ["--models", "mean,toy_classifier", "--datasets", "breast", "--protocol", "kfold", "--seeds", "2", *TOY_CLASSIFIER_SET,
            "--quiet", "--output", str(out)]
    results = benchmark.main(argv)
    text = out.read_text()
    assert text.startswith("# RMSE and accuracy on UCI tables, 20% MCAR (kfold protocol)")
    imputers, classifiers = text.split("## Imputers: RMSE", 1)[1].split("## Classifiers: accuracy", 1)
    assert "| mean | " in imputers and "toy_classifier" not in imputers and "lower is better" in imputers
    assert "| toy_classifier | " in classifiers and "| mean |" not in classifiers and "higher is better" in classifiers
    for model, section in (("mean", imputers), ("toy_classifier", classifiers)):
        scores = [r.score for r in results[(model, "breast")]]
        assert f"| {model} | {np.mean(scores):.4f} ± {np.std(scores, ddof=1):.4f} (n=2) |" in section
    assert "Classifier toy_classifier: `ZooClassifier` fitted on the fitted rows' incomplete inputs" in text
    with open(tmp_path / "mix.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], bool(r["rmse"]), bool(r["accuracy"])) for r in rows] == (
        [("mean", True, False)] * 2 + [("toy_classifier", False, True)] * 2)  # never both in one column
    assert all(0.7 < float(r["accuracy"]) <= 1 for r in rows[2:])


def test_classifier_sweep_has_its_own_tables_and_plot(toys, tmp_path):
    out = tmp_path / "sweep.md"
    argv = ["--models", "mean,toy_classifier", "--datasets", "breast", "--protocol", "holdout", "--miss-rates", "0.1,0.5", "--seeds", "1",
            *TOY_CLASSIFIER_SET, "--quiet", "--output", str(out)]
    results = benchmark.main(argv)
    text = out.read_text()
    imputers, classifiers = text.split("## Imputers: RMSE", 1)[1].split("## Classifiers: accuracy", 1)
    assert "| model | 10% | 50% |" in imputers and "toy_classifier" not in imputers
    runs = results[("toy_classifier", "breast")]
    assert "| toy_classifier | " + " | ".join(f"{r.score:.4f} (n=1)" for r in runs) + " |" in classifiers
    for name in ("sweep_rmse_vs_missing_rate.png", "sweep_accuracy_vs_missing_rate.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC) and f"({name})" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--models", "mean,toy_classifier", "--datasets", "breast"],
         "--protocol transductive would score classifier(s) toy_classifier on the rows they were fitted on (a training accuracy); "
         "use --protocol holdout or kfold"),
        (["--models", "toy_image_imputer", "--datasets", "digits", "--mechanism", "mnar"], "model 'toy_image_imputer' takes images only; under --mechanism mnar"),
    ],
)
def test_runs_that_cannot_be_scored_are_refused_in_one_line(toys, argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    err = capsys.readouterr().err
    last = err.rstrip("\n").splitlines()[-1]  # argparse's usage, then the error on one line
    assert last.startswith("python -m training.benchmark: error: ") and message in last, err


@pytest.fixture
def fit_shapes(monkeypatch):
    """{model name: shape of the X its ZooImputer.fit received}, filled as the benchmark runs."""
    from keraszoo.sklearn import ZooImputer

    seen = {}
    fit = ZooImputer.fit

    def spy_fit(self, X, y=None, callbacks=None):
        seen[self.name] = np.shape(X)
        return fit(self, X, y, callbacks=callbacks)

    monkeypatch.setattr(ZooImputer, "fit", spy_fit)
    return seen


def test_image_models_get_images_under_mcar_on_an_image_data_set(toys, fit_shapes, tmp_path):
    """MIWAE's setting (MCAR on MNIST): the image model gets [N, H, W, 1], the others the same rows and mask as before."""
    seen = fit_shapes
    common = ["--datasets", "digits", "--miss-rate", "0.2", "--max-rows", "100", "--seeds", "1", "--quiet"]
    with_images = benchmark.main(["--models", "mean,toy_image_imputer", *common, *TOY_IMAGE_SET, "--output", str(tmp_path / "a.md")])
    assert seen == {"mean": (100, 64), "toy_image_imputer": (100, 8, 8, 1)}
    # the flattened path (--dims keeps a table) draws the same mask: mean scores exactly as on the images
    table_only = benchmark.main(["--models", "mean", *common, "--dims", "64", "--output", str(tmp_path / "b.md")])
    [flat_key] = [k for k in table_only if k[0] == "mean"]
    assert with_images[("mean", "digits")][0].score == table_only[flat_key][0].score


def test_image_model_gets_images_and_is_scored_as_by_hand(toys, fit_shapes, monkeypatch, tmp_path):
    import keras

    from keraszoo import metrics
    from keraszoo.data import load_dataset
    from keraszoo.sklearn import ZooImputer

    seen = fit_shapes
    out = tmp_path / "img.md"
    argv = ["--models", "mean,gain,toy_image_imputer", "--datasets", "digits", "--mechanism", "square", "--max-rows", "100", "--seeds", "1",
            *TOY_IMAGE_SET, "--set", "gain.iterations=2", "--quiet", "--output", str(out)]
    results = benchmark.main(argv)
    # the image model gets [N, H, W, 1]; the classical model and the table-only GAIN rows of H * W pixels, as before
    assert seen == {"toy_image_imputer": (100, 8, 8, 1), "mean": (100, 64), "gain": (100, 64)}
    monkeypatch.undo()  # the by-hand fit below is not spied on

    images = benchmark.subset_rows(load_dataset("digits").images.astype(np.float64), 100)
    mask = benchmark.draw_mask(images, 0, 0.25, "square")
    incomplete = np.where(mask == 1, images, np.nan)[..., None]
    keras.utils.set_random_seed(0)
    imputed = ZooImputer("toy_image_imputer", iterations=10, batch_size=16, seed=0).fit(incomplete).transform(incomplete)
    assert imputed.shape == (100, 8, 8, 1)
    expected = metrics.rmse(images, imputed[..., 0], mask)  # on [N, H, W]: the metrics flatten each image
    assert results[("toy_image_imputer", "digits")][0].score == pytest.approx(expected, rel=1e-9)
    text = out.read_text()
    assert "toy_image_imputer takes images and gets them as [N, H, W, 1]" in text
    assert "mean, gain get one row of H x W pixels per image" in text


def test_image_only_model_on_a_table_is_refused_before_any_run(toys, tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--models", "toy_image_imputer", "--datasets", "breast", "--quiet", "--output", str(tmp_path / "x.md")])
    assert "model(s) toy_image_imputer take images only; 'breast' under --mechanism mcar gives a table" in capsys.readouterr().err
    assert not (tmp_path / "x.md").exists()


def test_a_terminal_shows_each_deep_runs_steps_and_losses(breast_mcar, monkeypatch):
    """On a terminal the bar follows a deep model inside its run: step count and current losses."""
    monkeypatch.setenv("COLUMNS", "250")  # a wide terminal: the bar is cut at its width
    stream = _Terminal()
    progress = benchmark.Progress(1, stream=stream)
    callback = progress.training_callback("breast gain 20% seed 0")
    benchmark.run_one("gain", {"iterations": 100}, breast_mcar[0], 0, 0.2, callbacks=[callback])
    shown = stream.getvalue()
    assert "breast gain 20% seed 0 | step 100/100 d_loss" in shown and "g_loss" in shown, shown[-300:]
    assert benchmark.Progress(1, stream=io.StringIO()).training_callback("x") is None  # a log gets no redraws


def test_paper_column_follows_the_protocol():
    """g2lgn.md Table 1 beside transductive 20% MCAR runs; emflow.md Table 1 beside its five folds (MCAR 20%, or
    MAR at Table 4's rates), its 12-column Wine only with --label-feature wine; none for any other setting."""
    reference = lambda argv: benchmark.paper_reference(benchmark.parse_args(argv))  # noqa: E731
    assert reference([])[1] == "g2lgn.md Table 1"
    kfold = ["--protocol", "kfold", "--norm-rows", "all", "--datasets", "letter,wine"]
    table, source = reference(kfold)
    assert source == "emflow.md Table 1" and table["emflow"] == {"letter": "0.1106", "credit": "0.1246"}
    assert reference(kfold + ["--label-feature", "wine"])[0]["mcflow"]["wine"] == "0.0975"
    mar = reference(kfold + ["--mechanism", "mar", "--miss-rate", "emflow", "--label-feature", "wine"])[0]
    assert mar == {"emflow": {"letter": "0.1095", "credit": "0.0239", "wine": "0.1020"}}
    for argv in (["--protocol", "kfold"], kfold + ["--miss-rate", "0.3"], ["--protocol", "holdout"], kfold + ["--mechanism", "mar"]):
        assert reference(argv) is None, argv


def test_warm_up_fits_each_zoo_model_once_untimed_before_the_timed_runs_and_changes_no_score(tmp_path, monkeypatch, capsys):
    plain = benchmark.main(["--models", "mean,knn", "--datasets", "breast", "--seeds", "2", "--quiet", "--output", str(tmp_path / "a.md")])
    calls, real = [], benchmark.run_one
    monkeypatch.setattr(benchmark, "run_one", lambda model, params, truth, *a, **k: calls.append((model, len(truth))) or real(model, params, truth, *a, **k))
    output = tmp_path / "b.md"
    warmed = benchmark.main(["--models", "mean,knn", "--datasets", "breast", "--seeds", "2", "--warm-up", "--output", str(output)])
    rows = benchmark.WARM_UP_ROWS
    assert calls == [("mean", rows), ("knn", rows)] + [(m, 569) for _ in range(2) for m in ("mean", "knn")]
    assert [(r.score, r.seed) for runs in warmed.values() for r in runs] == [(r.score, r.seed) for runs in plain.values() for r in runs]
    assert f"warm-up: knn on {rows} rows of breast" in capsys.readouterr().err
    assert "`--warm-up`" in output.read_text() and "`--warm-up`" not in (tmp_path / "a.md").read_text()
