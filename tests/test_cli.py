"""The first run a new user sees: `keraszoo` and the scripts start quietly, fail in one line, show progress.

Subprocesses run with an environment scrubbed of TF_CPP_MIN_LOG_LEVEL (as a new user's shell is), so
TensorFlow's start-up lines would show if the commands did not hide them.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from keraszoo import cli, console

#: lines TensorFlow, absl and CUDA print at start-up (none may reach a quiet command's output).
NOISE = ("cuinit", "cuda", "onednn", "absl", "i0000", "e0000", "w0000", "retracing")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scrubbed_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["KERASZOO_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = ROOT
    return env


def run(args, tmp_path, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=scrubbed_env(tmp_path), timeout=300, **kwargs)


def keraszoo(args, tmp_path):
    return run([sys.executable, "-m", "keraszoo.cli", *args], tmp_path)


def noise(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if any(word in line.lower() for word in NOISE)]


def one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def tiny_csv(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((40, 3)), columns=list("abc")).mask(rng.random((40, 3)) < 0.2)
    frame.to_csv(tmp_path / "in.csv", index=False)
    return frame


@pytest.fixture
def no_quiet(monkeypatch):
    """Record cli's quiet_tensorflow calls instead of changing this process's TensorFlow logging."""
    calls = []
    monkeypatch.setattr(cli, "quiet_tensorflow", lambda verbose=False: calls.append(verbose))
    return calls


# --------------------------------------------------------------------------------------------------
# light start: no TensorFlow for `import keraszoo`, --help, --version and early errors
# --------------------------------------------------------------------------------------------------
def test_import_and_help_do_not_import_tensorflow(tmp_path):
    code = (
        "import sys, keraszoo, keraszoo.console\n"
        "from keraszoo import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "print('TF' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'light')\n"
    )
    done = run([sys.executable, "-c", code], tmp_path, check=True)
    assert done.stdout.strip().endswith("light") and "usage: keraszoo" in done.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == "keraszoo 0.1.0"


def test_python_dash_m_keraszoo_is_the_command_with_its_exit_status(tmp_path):
    done = run([sys.executable, "-m", "keraszoo", "--version"], tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "keraszoo 0.1.0"
    for module in ("keraszoo", "keraszoo.cli"):
        failed = run([sys.executable, "-m", module, "impute", "--input", "absent.csv", "--output", "out.csv"], tmp_path)
        assert failed.returncode == 1 and failed.stderr.strip() == "keraszoo impute: no input file absent.csv", (module, failed.stderr)


@pytest.mark.parametrize("command", ["train", "benchmark", "demo", "serve"])
def test_pass_through_help_names_the_keraszoo_command(command, capsys, no_quiet):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: keraszoo {command} ")


def test_verbose_is_accepted_by_every_pass_through_command(capsys, no_quiet):
    for command in ("train", "benchmark", "demo", "serve"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--verbose", "--help"])
        assert exit_.value.code == 0, command
    assert "unrecognized" not in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# one-line errors
# --------------------------------------------------------------------------------------------------
def test_impute_with_a_missing_input_file_fails_in_one_line(tmp_path):
    line = one_error_line(keraszoo(["impute", "--input", "nope.csv", "--output", "out.csv"], tmp_path))
    assert line.startswith("keraszoo impute: ") and "nope.csv" in line and not (tmp_path / "out.csv").exists()


def test_impute_with_a_missing_output_folder_fails_before_fitting(tmp_path, tiny_csv):
    line = one_error_line(keraszoo(["impute", "--input", "in.csv", "--output", "no/such/dir/out.csv"], tmp_path))
    assert "no/such/dir" in line


def test_usage_errors_are_one_line(tmp_path):
    line = one_error_line(keraszoo(["impute", "--output", "out.csv"], tmp_path))
    assert "--input" in line and "keraszoo impute --help" in line
    line = one_error_line(keraszoo(["nosuch"], tmp_path))
    assert "invalid choice" in line and "'nosuch'" in line
    line = one_error_line(keraszoo(["impute", "--input", "in.csv", "--output", "o.csv", "--set", "x"], tmp_path))
    assert "KEY=VALUE" in line


def test_one_line_errors_formats_every_exception():
    def fail(err):
        with pytest.raises(SystemExit) as exit_:
            with console.one_line_errors("prog"):
                raise err
        return exit_.value.code

    assert fail(ValueError("bad value\n  on two lines")) == "prog: bad value on two lines"
    assert fail(FileNotFoundError(2, "No such file or directory", "x.csv")) == "prog: No such file or directory: x.csv"
    assert fail(KeyError("k")) == "prog: KeyError: 'k' (--verbose shows the traceback)"
    assert fail(KeyboardInterrupt()) == 130
    with pytest.raises(SystemExit, match="^keep me$"):
        with console.one_line_errors("prog"):
            raise SystemExit("keep me")
    with pytest.raises(KeyError):  # --verbose: the traceback
        with console.one_line_errors("prog", verbose=True):
            raise KeyError("k")


def test_run_cli_wraps_a_main():
    def main(argv):
        raise RuntimeError(f"broken by {argv}")

    with pytest.raises(SystemExit, match=r"^script: RuntimeError: broken by \['a'\]"):
        console.run_cli(main, ["a"], prog="script")
    with pytest.raises(RuntimeError):
        console.run_cli(main, ["a", "--verbose"], prog="script")


# --------------------------------------------------------------------------------------------------
# quiet TensorFlow
# --------------------------------------------------------------------------------------------------
def test_silenced_stderr_hides_file_descriptor_2_and_replays_it_on_failure(capfd):
    with console.silenced_stderr():
        os.write(2, b"hidden\n")
    os.write(2, b"shown\n")
    with pytest.raises(ImportError):
        with console.silenced_stderr():
            os.write(2, b"why it failed\n")
            raise ImportError("no")
    assert capfd.readouterr().err == "shown\nwhy it failed\n"


def test_quiet_tensorflow_verbose_changes_nothing(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    filters = list(__import__("warnings").filters)
    console.quiet_tensorflow(verbose=True)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ and __import__("warnings").filters == filters


def test_models_is_quiet_and_its_cached_listing_needs_no_tensorflow(tmp_path):
    cold = keraszoo(["models"], tmp_path)
    assert cold.returncode == 0 and not noise(cold), noise(cold) or cold.stderr
    assert "gain" in cold.stdout and "hint_rate=0.9" in cold.stdout and "knn" in cold.stdout and "training:" in cold.stdout
    cached = json.loads((tmp_path / "cache" / "models.json").read_text())
    assert "\n".join(cached["lines"]) + "\n" == cold.stdout
    # A second run with the same sources prints the kept listing without importing TensorFlow. (The key
    # is written here, from the sources as they are now: this tree may be edited while the test runs.)
    code = (
        "import json, os, sys\nfrom keraszoo import cli\n"
        "key = cli._source_fingerprint(os.path.dirname(os.path.abspath(cli.keraszoo.__file__)))\n"
        f"json.dump({{'key': key, 'lines': {cached['lines']!r} + ['(kept)']}}, open(cli._cache_path(), 'w'))\n"
        "cli.main(['models'])\nprint('TF' if 'tensorflow' in sys.modules else 'light')"
    )
    warm = run([sys.executable, "-c", code], tmp_path, check=True)
    assert warm.stdout == cold.stdout + "(kept)\nlight\n"


def test_models_cache_key_follows_the_sources(tmp_path):
    (tmp_path / "m.py").write_text("A = 1\n")
    before = cli._source_fingerprint(str(tmp_path))
    assert cli._source_fingerprint(str(tmp_path)) == before
    (tmp_path / "m.py").write_text("A = 22\n")
    assert cli._source_fingerprint(str(tmp_path)) != before


def test_models_shows_each_models_own_training_parameters():
    class Flow:
        task = "classify"
        example_kinds = ("table", "image")

        @classmethod
        def fit_parameters(cls):
            return {"rounds": 3, "learning_rate": 1e-4}

    line = cli._model_line("flow", Flow, {"depth": 2}, deep=True)
    assert line.split() == ["flow", "[deep,", "classify,", "table/image]", "depth=2;", "training:", "rounds=3,", "learning_rate=0.0001"]
    assert "training" not in cli._model_line("mean", object, {}, deep=False)


def test_demo_runs_end_to_end_in_a_fresh_process_with_no_tensorflow_noise(tmp_path):
    """`make demo` as a new user sees it: a fresh interpreter, TensorFlow's log variables unset."""
    from training import demo

    done = run([sys.executable, "-m", "training.demo", "--iterations", "100", "--save-dir", "gain", "--serving-dir", "serving"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert not noise(done), noise(done)
    out = done.stdout
    # the RMSE table: "model  fitted  unseen  seconds", one row per demo model
    rows = [line.split() for line in out.split("lower is better):", 1)[1].splitlines()[3 : 3 + len(demo.DEMO_MODELS)]]
    table = {row[0]: [float(v) for v in row[1:]] for row in rows}
    assert set(table) == set(demo.DEMO_MODELS), out
    assert table["knn"][1] < table["mean"][1], table
    assert "imputed by the loaded model" in out and (tmp_path / "gain" / "model.keras").exists()
    assert "over gRPC" in out and "over REST" in out and "stopped the server" in out
    assert (tmp_path / "serving" / "gain_breast" / "1" / "saved_model.pb").exists()


def test_demo_help_is_quiet(tmp_path):
    done = run([sys.executable, "-m", "training.demo", "--help"], tmp_path, check=True)
    assert "--verbose" in done.stdout and not noise(done)


def test_impute_is_quiet_and_shows_progress_on_stderr_only(tmp_path, tiny_csv):
    args = ["impute", "--model", "gain", "--set", "iterations=100", "--input", "in.csv", "--output", "out.csv", "--progress"]
    done = keraszoo(args, tmp_path)
    assert done.returncode == 0 and not noise(done), noise(done) or done.stderr
    assert done.stdout == ""  # stdout stays clean for data
    assert "100/100" in done.stderr and "imputed" in done.stderr
    assert not pd.read_csv(tmp_path / "out.csv").isna().any().any()


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize(
    "flag, verbose, tty, shown",
    [(None, False, True, True), (None, False, False, False), (True, False, False, True), (False, False, True, False), (None, True, False, True)],
)
def test_progress_defaults_to_whether_stderr_is_a_terminal(flag, verbose, tty, shown):
    assert cli._show_progress(flag, verbose, _Stream(tty)) is shown


def test_impute_passes_progress_and_verbose_through(tmp_path, tiny_csv, monkeypatch, no_quiet):
    import keraszoo.sklearn

    seen = []

    class Recorder(keraszoo.sklearn.ZooImputer):
        def fit(self, X, y=None):
            seen.append(dict(self.params))
            return super().fit(X)

    monkeypatch.setattr(keraszoo.sklearn, "ZooImputer", Recorder)
    base = ["impute", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
    cli.main(base + ["--model", "gain", "--set", "iterations=50", "--progress"])
    cli.main(base + ["--model", "gain", "--set", "iterations=50", "--no-progress", "--verbose"])
    cli.main(base + ["--model", "gain", "--set", "iterations=50", "--set", "verbose=2", "--no-progress"])
    cli.main(base + ["--model", "mean", "--progress"])  # classical: no training parameters
    assert [params.get("verbose") for params in seen] == [1, 0, 2, None]
    assert no_quiet == [False, True, False, False]


def test_pass_through_returns_an_exit_status_not_the_commands_result(monkeypatch, no_quiet):
    # The console script does sys.exit(main()): a dict returned would be printed and exit with status 1.
    import training.benchmark

    monkeypatch.setattr(training.benchmark, "main", lambda argv: {("mean", "breast"): [0.2]})
    assert cli.main(["benchmark", "--models", "mean"]) is None
