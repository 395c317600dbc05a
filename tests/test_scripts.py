"""The entry points: benchmark runner, speed script and the `keraszoo` command, on tiny settings."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from training import benchmark


def test_benchmark_writes_a_markdown_table(tmp_path, capsys):
    output = tmp_path / "table.md"
    results = benchmark.main(
        ["--models", "mean,gain", "--datasets", "breast", "--seeds", "2", "--set", "gain.iterations=100", "--output", str(output)]
    )
    assert len(results[("gain", "breast")]) == 2
    text = output.read_text()
    assert "Command: `python -m training.benchmark --models mean,gain" in text
    assert "| gain |" in text and "| mean |" in text and "Machine:" in text
    scores = [r[0] for r in results[("mean", "breast")]]
    assert all(0 < s < 1 for s in scores) and scores[0] != scores[1]  # seeds give different masks


def test_benchmark_holdout_protocol(tmp_path):
    results = benchmark.main(["--models", "mean", "--datasets", "breast", "--seeds", "1", "--protocol", "holdout", "--output", str(tmp_path / "h.md")])
    assert 0 < results[("mean", "breast")][0][0] < 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--models", "gan"], "unknown model 'gan'"),
        (["--datasets", "spambase"], "unknown dataset 'spambase'"),
        (["--miss-rate", "1.0"], "--miss-rate must be in"),
        (["--set", "gain.iterations"], "MODEL.PARAM=VALUE"),
    ],
)
def test_benchmark_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    assert message in capsys.readouterr().err


def test_cli_impute_fit_save_and_reuse(tmp_path, capsys):
    """The first call is the real command in a fresh process; the rest run `keraszoo.cli.main` in this one
    (the same code after start-up, without paying TensorFlow's import five more times)."""
    from keraszoo import cli

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((60, 4)), columns=list("abcd")).mask(rng.random((60, 4)) < 0.2)
    frame.to_csv(tmp_path / "in.csv", index=False)
    subprocess.run(
        [sys.executable, "-m", "keraszoo.cli", "impute", "--model", "knn", "--set", "n_neighbors=3", "--input", str(tmp_path / "in.csv"),
         "--output", str(tmp_path / "out.csv"), "--save", str(tmp_path / "knn")],
        check=True,
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert not out.isna().any().any()
    np.testing.assert_allclose(out.to_numpy()[frame.notna().to_numpy()], frame.to_numpy()[frame.notna().to_numpy()])

    def keraszoo(*args):
        try:
            status = cli.main(list(args))
        except SystemExit as exit_:
            status = exit_.code
        captured = capsys.readouterr()
        if isinstance(status, str):  # SystemExit("message"): Python prints it to stderr and exits with 1
            return 1, captured.out, captured.err + status
        return status or 0, captured.out, captured.err

    assert keraszoo("impute", "--load", str(tmp_path / "knn"), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "again.csv"))[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), out)
    status, _, err = keraszoo("impute", "--model", "knn", "--set", "k=3", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "x.csv"))
    assert status != 0 and "no parameter 'k'" in err
    # the saved imputer becomes a SavedModel for TF Serving, at the next free version
    base = tmp_path / "serving"
    for version in ("1", "2"):
        status, stdout, _ = keraszoo("export", "--load", str(tmp_path / "knn"), "--base-path", str(base))
        assert status == 0 and (base / "knn" / version / "saved_model.pb").exists() and "serving.server" in stdout
    status, _, err = keraszoo("export", "--load", str(tmp_path / "knn"), "--base-path", str(base), "--version", "1")
    assert status != 0 and "immutable" in err


def test_speed_loops_run_exactly_the_steps_asked():
    """Counted with the optimizers' iterations: 30 steps at 7 per call is 4 calls of 7 and one of 2."""
    from training import speed

    rng = np.random.default_rng(0)
    x = rng.random((256, 6)).astype(np.float32)
    mask = (rng.random(x.shape) >= 0.2).astype(np.float32)
    for per_call in (1, 7, 30):
        timing = speed.bare_keras_gain(x, mask, 32, 30, steps_per_call=per_call)
        assert (timing.optimizer_steps, timing.steps_per_call) == (30, per_call)
        assert timing.steps_per_second > 0
    zoo = speed.zoo_gain(x, mask, 32, 30)
    assert zoo.optimizer_steps == 30 and zoo.steps_per_call == speed.zoo_steps_per_execution(256, 32, 30)


def test_speed_script_reports_both_ratios_like_for_like(capsys):
    import re

    from training import speed

    result = speed.main(["--features", "8", "--rows", "512", "--steps", "100", "--repeats", "1"])
    out = capsys.readouterr().out
    # the bare loop at N steps per call runs the zoo's steps_per_execution (50 here), every run exactly 100 steps
    assert result["steps_per_call"] == result["zoo_steps_per_call"] == 50
    for name, per_call in (("bare_1", 1), ("bare_n", 50), ("zoo", 50)):
        (timing,) = result["runs"][name]
        assert (timing.optimizer_steps, timing.steps_per_call) == (100, per_call)
        assert f"{timing.steps_per_second:.1f}" in out  # every timing printed
    best = result["best"]
    assert result["zoo_over_bare_1"] == pytest.approx(best["zoo"] / best["bare_1"])
    assert result["zoo_over_bare_n"] == pytest.approx(best["zoo"] / best["bare_n"])
    printed_1 = re.search(r"zoo / bare at 1 step per call\s*:\s*(\d+\.\d{3})\n", out)
    printed_n = re.search(r"zoo / bare at 50 steps per call\s*:\s*(\d+\.\d{3})\s+\(like for like\)", out)
    assert printed_1 and float(printed_1.group(1)) == round(result["zoo_over_bare_1"], 3)
    assert printed_n and float(printed_n.group(1)) == round(result["zoo_over_bare_n"], 3)
    assert re.search(r"target: zoo >= 0\.90 x bare at the same steps per call: (met|missed by \d\.\d{3})\n", out)


def test_speed_script_rejects_bad_arguments(capsys):
    from training import speed

    for argv in (["--steps", "0"], ["--steps-per-call", "0"], ["--rows", "-1"]):
        with pytest.raises(SystemExit):
            speed.main(argv)
        assert "must be positive" in capsys.readouterr().err
