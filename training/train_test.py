"""Tests of the training CLI, its TensorBoard logs, checkpoints and distribution strategies.

Fast and deterministic: scikit-learn's breast table (and digits for images), a few epochs of a few
steps. Multi-replica runs need a fresh TensorFlow (logical devices, collectives), so they run in
subprocesses, each bounded in time and killed on timeout.
"""
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from keraszoo import registry
from keraszoo.models.base import DeepImputer, global_sum
from keraszoo.models.layers import mlp
from keraszoo.testing import tensorboard_tensors
from training import callbacks as cb
from training import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "KERASZOO_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
ENV.pop("TF_CONFIG", None)
TRAIN = [sys.executable, "-m", "training.train"]


tensors = tensorboard_tensors


def run_cli(argv, capsys):
    summary = train.main(argv)
    return summary, capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# the command, in process (default strategy)
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gain_run(tmp_path_factory):
    """One small GAIN run on breast with export: (summary, stdout, logdir, export dir)."""
    base = tmp_path_factory.mktemp("gain_run")
    logdir, export_dir = str(base / "logs"), str(base / "serving")
    argv = ["--model", "gain", "--dataset", "breast", "--epochs", "3", "--batch-size", "8", "--seed", "1"]
    argv += ["--logdir", logdir, "--export", export_dir, "--set", "alpha=50", "--learning-rate", "0.002"]
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        summary = train.main(argv)
    return summary, out.getvalue(), logdir, export_dir


def test_cli_prints_epochs_and_held_out_rmse(gain_run):
    summary, out, _, _ = gain_run
    epochs = re.findall(r"^epoch (\d+)/3 +d_loss \S+ +g_loss \S+ +mse_observed \S+ +val_rmse (\S+)", out, re.M)
    assert [int(e) for e, _ in epochs] == [1, 2, 3], out
    assert [float(v) for _, v in epochs] == pytest.approx(summary["history"]["val_rmse"], rel=1e-3)
    final = re.search(r"^held-out RMSE (\S+) \(best model; last epoch (\S+)\); mean imputation (\S+)", out, re.M)
    assert final, out
    assert float(final.group(1)) == pytest.approx(min(summary["history"]["val_rmse"]), abs=1e-4)
    assert np.isfinite(summary["val_rmse"]) and 0 < summary["val_rmse"] < 1


def test_resolved_config_is_saved_beside_the_checkpoints(gain_run):
    _, _, logdir, _ = gain_run
    with open(os.path.join(logdir, "config.json")) as f:
        config = json.load(f)
    assert config["model"] == "gain" and config["dataset"] == "breast" and config["mechanism"] == "mcar"
    assert config["seed"] == 1 and config["strategy"] == "default" and config["replicas"] == 1
    # gain.json, then --set, then the flags; the model seed follows --seed
    assert config["params"] == {
        "hint_rate": 0.9, "alpha": 50, "hidden_units": None, "noise_scale": 0.01, "hint_variant": "code",
        "extra_mask_rate": 0.0, "seed": 1,
    }
    assert config["training"]["epochs"] == 3 and config["training"]["batch_size"] == 8
    assert config["training"]["learning_rate"] == 0.002
    assert config["data"]["train_rows"] + config["data"]["held_out_rows"] == 569
    assert sorted(os.listdir(logdir)) == ["best.json", "best.keras", "config.json", "final.weights.h5", "train", "validation"]


def test_tensorboard_has_losses_learning_rates_and_held_out_rmse(gain_run):
    summary, _, logdir, _ = gain_run
    train_tags = tensors(logdir, "train")
    for tag in ("epoch_d_loss", "epoch_g_loss", "epoch_mse_observed"):
        values = np.array(train_tags[tag], dtype=float)
        assert values.shape == (3,) and np.isfinite(values).all(), tag
        np.testing.assert_allclose(values, summary["history"][tag[len("epoch_"):]], rtol=1e-6)
    # the optimizers GAIN really trains with; not the placeholder `model.optimizer` compile creates
    for tag in ("epoch_g_optimizer_learning_rate", "epoch_d_optimizer_learning_rate"):
        np.testing.assert_allclose(np.array(train_tags[tag], dtype=float), [0.002] * 3, rtol=1e-6)
    assert "epoch_learning_rate" not in train_tags
    validation = tensors(logdir, "validation")
    assert list(validation) == ["epoch_rmse"]
    np.testing.assert_allclose(np.array(validation["epoch_rmse"], dtype=float), summary["history"]["val_rmse"], rtol=1e-6)


def test_export_is_a_serving_model_of_the_best_checkpoint(gain_run, capsys):
    from keraszoo.data import load_dataset

    summary, _, logdir, export_dir = gain_run
    assert summary["export_path"] == os.path.join(export_dir, "gain_breast", "1")
    served = tf.saved_model.load(summary["export_path"])
    x = load_dataset("breast").numeric_array()[:20]
    mask = (np.random.default_rng(0).random(x.shape) >= 0.3).astype(np.float32)
    incomplete = np.where(mask == 1, x, np.nan).astype(np.float32)
    out = served.signatures["serving_default"](x=tf.constant(incomplete))["imputed"].numpy()
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[mask == 1], incomplete[mask == 1])
    best = keras.models.load_model(os.path.join(logdir, "best.keras"), compile=False)
    assert best.get_config()["alpha"] == 50
    # exporting again takes the next free version
    # a model no better than mean imputation is refused, unless forced; exporting again takes the next free version
    argv = ["--model", "gain", "--dataset", "breast", "--epochs", "1", "--batch-size", "128", "--logdir", str(os.path.join(logdir, "again")),
            "--export", export_dir]
    with pytest.raises(SystemExit, match=r"not exported: held-out RMSE \S+ is no better than mean imputation's \S+ \(--force"):
        run_cli(argv, capsys)
    assert "warning: held-out RMSE" in capsys.readouterr().err
    assert sorted(os.listdir(os.path.join(export_dir, "gain_breast"))) == ["1"]
    again, _ = run_cli(argv + ["--force"], capsys)
    assert again["worse_than_baseline"] and again["export_path"] == os.path.join(export_dir, "gain_breast", "2")


def test_keraszoo_train_passes_through(tmp_path, capsys):
    from keraszoo import cli

    with pytest.raises(SystemExit, match="unknown dataset 'nope'"):
        cli.main(["train", "--model", "gain", "--dataset", "nope"])


def test_image_datasets_get_an_image_grid(tmp_path, capsys):
    logdir = str(tmp_path / "digits")
    summary, out = run_cli(
        ["--model", "gain", "--dataset", "digits", "--max-rows", "300", "--epochs", "2", "--batch-size", "64", "--logdir", logdir,
         "--mechanism", "square", "--miss-rate", "0.25"],
        capsys,
    )
    images = tensors(logdir, "images")
    assert list(images) == ["imputation"] and len(images["imputation"]) == 2
    width, height, png = images["imputation"][-1]
    grid = tf.io.decode_png(png).numpy()[..., 0]
    # 8 held-out digits (8x8, enlarged 8 times), truth | mask | imputed with one grey line between panels
    assert (int(width), int(height)) == (3 * 64 + 2, 8 * 64 + 7) and grid.shape == (8 * 64 + 7, 3 * 64 + 2)
    with open(os.path.join(logdir, "config.json")) as f:
        config = json.load(f)
    assert config["data"]["train_rows"] + config["data"]["held_out_rows"] == 300
    # the mask panel of every row shows the square mechanism's hole: a quarter of the image, black
    for row in range(8):
        panel = grid[row * 65 : row * 65 + 64, 65:129] / 255.0
        assert panel.min() == 0.0 and panel.max() == 1.0
        assert np.mean(panel == 0.0) == pytest.approx(0.25, abs=0.05)


def test_mnist_subset_image_grid(tmp_path, capsys):
    """GAIN on 512 flattened MNIST images, 3 epochs (needs mnist.npz in $KERASZOO_DATA_DIR or the cache).

    Scored on the pixel range, GAIN (reference-code init, 784 sigmoid outputs) learns slowly here: in
    batches of 64 it was still worse than the mean after 4 epochs of 6 steps (held-out RMSE 0.2689
    against 0.2619); in batches of 16 (25 steps an epoch) it gave 0.2820, 0.2616, 0.2504.
    """
    from keraszoo.data import DatasetNotFoundError, load_dataset

    try:
        load_dataset("mnist", download=False)
    except DatasetNotFoundError:
        pytest.skip("mnist.npz is not available offline")
    logdir = str(tmp_path / "mnist")
    summary, out = run_cli(
        ["--model", "gain", "--dataset", "mnist", "--max-rows", "512", "--epochs", "3", "--batch-size", "16", "--logdir", logdir,
         "--mechanism", "noise", "--miss-rate", "0.5"],
        capsys,
    )
    assert "(410 examples of 28x28x1, 102 held out; noise 0.5)" in out  # GAIN sees them flattened to 784 columns
    assert summary["val_rmse"] < summary["mean_imputation_rmse"]
    width, height, png = tensors(logdir, "images")["imputation"][-1]
    assert (int(width), int(height)) == (3 * 84 + 2, 8 * 84 + 7)  # 28x28 enlarged 3 times


# --------------------------------------------------------------------------------------------------
# configuration and bad input
# --------------------------------------------------------------------------------------------------
def test_config_layers_override_in_order(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"hint_rate": 0.5, "alpha": 10.0, "epochs": 7}))
    params, training = train.resolve_config("gain", str(config), {"alpha": 20.0}, {"epochs": 9, "batch_size": None})
    assert params["hint_rate"] == 0.5 and params["alpha"] == 20.0 and params["noise_scale"] == 0.01  # from gain.json
    assert training["epochs"] == 9 and training["batch_size"] == 128 and training["learning_rate"] == 0.001  # from gain.json


def test_a_runs_saved_config_json_can_be_passed_back(gain_run, tmp_path, capsys):
    """The config.json a real run wrote (not a hand-made file): passed back with --config, it reproduces the
    run's settings. It failed with "unknown config key(s) steps_per_epoch" when derived values sat in `training`."""
    _, _, logdir, _ = gain_run
    saved = os.path.join(logdir, "config.json")
    params, training = train.resolve_config("gain", saved)
    with open(saved) as f:
        written = json.load(f)
    assert params == written["params"] and training == written["training"]
    summary, out = run_cli(["--model", "gain", "--dataset", "breast", "--config", saved, "--epochs", "1", "--logdir", str(tmp_path / "re")], capsys)
    with open(tmp_path / "re" / "config.json") as f:
        rerun = json.load(f)
    assert rerun["params"] == written["params"]
    assert {k: v for k, v in rerun["training"].items() if k != "epochs"} == {k: v for k, v in written["training"].items() if k != "epochs"}


def test_a_model_without_config_file_uses_its_constructor_defaults(tmp_path):
    params, training = train.resolve_config("gain", configs_dir=str(tmp_path))
    assert params == {} and training == train.TRAINING_DEFAULTS
    assert os.path.exists(train.model_config_path("gain"))


def test_unknown_config_keys_list_the_valid_ones(tmp_path):
    expected = r"unknown config key\(s\) hint in --set; .*model parameters alpha, .*hint_rate.*training epochs, batch_size"
    with pytest.raises(train.ConfigError, match=expected):
        train.resolve_config("gain", sets={"hint": 0.5})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epoch": 3}))
    with pytest.raises(train.ConfigError, match=f"unknown config key\\(s\\) epoch in {re.escape(str(bad))}"):
        train.resolve_config("gain", str(bad))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "nope"], r"'nope' is not a registered model; deep models: .*\bgain\b"),  # every deep model, GAIN among them
        (["--model", "mean"], r"'mean' is not a deep model .*; deep models: .*\bgain\b"),
        (["--dataset", "nope"], r"unknown dataset 'nope'; valid datasets: .*breast"),
        (["--miss-rate", "0"], r"--miss-rate must be in \(0, 1\)"),
        (["--miss-rate", "1"], r"--miss-rate must be in \(0, 1\)"),
        (["--miss-rate", "-0.2"], r"--miss-rate must be in \(0, 1\)"),
        (["--epochs", "0"], r"epochs must be an integer >= 1"),
        (["--set", "batch_size=2.5"], r"batch_size must be an integer >= 1"),
        (["--set", "hint_rat=0.5"], r"unknown config key\(s\) hint_rat in --set; valid keys for model 'gain'"),
        (["--set", "hint_rate=2"], r"model 'gain': hint_rate must be in \[0, 1\]"),
        (["--mechanism", "mcr"], r"unknown mechanism 'mcr'; valid mechanisms: mcar, mar, mnar"),
        (["--mechanism", "square"], r"mechanism 'square' is for image data sets"),
        (["--strategy", "tpu"], r"unknown strategy 'tpu'; valid strategies: default, mirrored, multiworker"),
        (["--cpu-replicas", "2"], r"--cpu-replicas is for --strategy mirrored only"),
        (["--config", "/nonexistent.json"], r"cannot read config file /nonexistent.json"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, extra, message):
    argv = ["--model", "gain", "--dataset", "breast", "--epochs", "1", "--logdir", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv + extra)
    assert isinstance(exit_info.value.code, str), exit_info.value.code  # a message, not a status
    assert re.search(message, exit_info.value.code), exit_info.value.code
    assert exit_info.value.code.startswith("train: ")


def test_resuming_with_other_settings_is_refused(tmp_path, capsys):
    logdir = tmp_path / "run"
    (logdir / "backup").mkdir(parents=True)
    (logdir / "backup" / "latest.weights.h5").write_text("stale")
    (logdir / "config.json").write_text(json.dumps({"model": "gain", "dataset": "breast", "mechanism": "mcar", "miss_rate": 0.5}))
    with pytest.raises(SystemExit, match=r"holds the backup of an unfinished run with other settings \(miss_rate"):
        train.main(["--model", "gain", "--dataset", "breast", "--epochs", "1", "--logdir", str(logdir)])


# --------------------------------------------------------------------------------------------------
# callbacks
# --------------------------------------------------------------------------------------------------
def test_checkpoint_and_early_stopping_see_val_rmse(tmp_path, breast_mcar):
    """Callback order: val_rmse is in the logs before ModelCheckpoint, EarlyStopping and History read it."""
    from keraszoo.models.base import make_dataset
    from keraszoo.models.gain import GAIN

    truth, mask = breast_mcar
    model = GAIN()
    model.build((None, truth.shape[1]))
    model.compile_default(1e-3, steps_per_execution=2)
    model.build_optimizers()
    scores = iter([0.5, 0.4, 0.45, 0.46, 0.47, 0.48])  # best at epoch 2, then worse: patience 2 stops after epoch 4
    lines = []
    callbacks = train.make_callbacks(
        score=lambda: next(scores), epochs=6, logdir=str(tmp_path), backup_dir=str(tmp_path / "backup"), chief=True,
        early_stopping=2,
    )
    callbacks[-1].print_fn = lines.append
    weights = []
    callbacks.insert(-1, keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: weights.append(model.get_weights())))
    history = model.fit(make_dataset(truth, mask, 64), epochs=6, steps_per_epoch=2, verbose=0, callbacks=callbacks, shuffle=False)
    assert history.history["val_rmse"] == [0.5, 0.4, 0.45, 0.46]
    assert history.epoch == [0, 1, 2, 3]
    best = keras.models.load_model(tmp_path / "best.keras", compile=False).get_weights()
    for saved, at_epoch_2, at_epoch_4 in zip(best, weights[1], weights[3]):  # the lowest val_rmse was at epoch 2
        np.testing.assert_array_equal(saved, at_epoch_2)
    assert any(not np.array_equal(a, b) for a, b in zip(weights[1], weights[3]))
    assert [line.split()[1] for line in lines] == ["1/6", "2/6", "3/6", "4/6"]
    assert not os.path.exists(tmp_path / "backup" / "latest.weights.h5")  # deleted once training ends


def test_a_resumed_run_keeps_an_earlier_better_best_model(tmp_path, breast_mcar):
    from keraszoo.models.base import make_dataset
    from keraszoo.models.gain import GAIN

    truth, mask = breast_mcar

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    def fit(scores, extra=()):
        model = GAIN()
        model.build((None, truth.shape[1]))
        model.compile_default(1e-3, steps_per_execution=2)
        model.build_optimizers()
        weights = []
        callbacks = train.make_callbacks(
            score=iter(scores).__next__, epochs=4, logdir=str(tmp_path), backup_dir=str(tmp_path / "backup"), chief=True
        )
        callbacks[-1].print_fn = lambda line: None
        callbacks[1:1] = [keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: weights.append(model.get_weights()))]
        try:
            dataset = make_dataset(truth, mask, 64)
            model.fit(dataset, epochs=4, steps_per_epoch=2, verbose=0, callbacks=callbacks + list(extra), shuffle=False)
        except KeyboardInterrupt:
            pass
        return weights

    first = fit([0.3, 0.5], [Interrupt()])  # best at epoch 1, killed after epoch 2
    assert len(first) == 2
    second = fit([0.4, 0.35])  # resumes at epoch 3: worse than 0.3, so best.keras stays epoch 1's model
    assert len(second) == 2
    best = keras.models.load_model(tmp_path / "best.keras", compile=False).get_weights()
    for saved, at_epoch_1 in zip(best, first[0]):
        np.testing.assert_array_equal(saved, at_epoch_1)
    with open(tmp_path / "best.json") as f:
        assert json.load(f) == {"epoch": 1, "val_rmse": 0.3}


def test_named_optimizers_and_the_placeholder_is_built_empty():
    from keraszoo.models.gain import GAIN

    model = GAIN()
    model.build((None, 5))
    model.compile_default(0.01)
    model.build_optimizers()
    assert [name for name, _ in cb.named_optimizers(model)] == ["g_optimizer", "d_optimizer"]
    assert model.optimizer.built and len(model.optimizer.variables) == 2  # iterations and learning rate, no slots


def test_random_uniform_is_keras_random_with_one_replica():
    from keraszoo.models.gain import GAIN

    model = GAIN(seed=5)
    reference = keras.random.SeedGenerator(5)
    for shape in [(3, 4), (2,)]:
        np.testing.assert_array_equal(model.random_uniform(shape, 0.0, 0.3), keras.random.uniform(shape, 0.0, 0.3, seed=reference))


def test_distribute_helpers():
    from types import SimpleNamespace

    from keraszoo import distribute

    with pytest.raises(ValueError, match="unknown strategy 'tpu'; valid strategies: default, mirrored, multiworker"):
        distribute.get_strategy("tpu")
    with pytest.raises(ValueError, match="for the 'mirrored' strategy only"):
        distribute.get_strategy("default", n_cpu_replicas=2)
    tf.constant(1.0)  # devices are initialised in this process
    with pytest.raises(RuntimeError, match="cannot split the CPU into 3 logical devices: TensorFlow already initialised"):
        distribute.split_cpu(3)
    default = distribute.get_strategy("default")
    assert distribute.worker_info(default) == ("worker", 0, 1) and distribute.is_chief(default)
    assert distribute.steps_per_execution_limit(default) is None
    assert distribute.steps_per_execution_limit(SimpleNamespace(num_replicas_in_sync=2)) == 1
    options = distribute.shard_dataset(tf.data.Dataset.range(4)).options()
    assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    spec = tf.train.ClusterSpec({"chief": ["a:1"], "worker": ["b:1", "c:1"]})
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver
    for task_type, task_id, chief in [("chief", 0, True), ("worker", 0, False), ("worker", 1, False)]:
        strategy = SimpleNamespace(cluster_resolver=resolver(spec, task_type=task_type, task_id=task_id))
        assert distribute.is_chief(strategy) == chief and distribute.worker_info(strategy) == (task_type, task_id, 3)
    workers_only = SimpleNamespace(cluster_resolver=resolver(tf.train.ClusterSpec({"worker": ["b:1", "c:1"]}), "worker", 0))
    assert distribute.is_chief(workers_only)


# --------------------------------------------------------------------------------------------------
# a new model needs no change in training/
# --------------------------------------------------------------------------------------------------
class ToyAutoencoder(DeepImputer):
    """A minimal deep imputer with ONE optimizer: reconstructs observed entries."""

    optimizer_networks = {"ae_optimizer": "net"}

    def build_networks(self, example_shape):
        (n_features,) = example_shape
        self.net = mlp(2 * n_features, [8], n_features, "sigmoid", seed=self.seed, name="net")

    def generate(self, x, mask, training=False):
        return self.net(tf.concat([x * mask, mask], axis=1), training=training)

    def impute_batch(self, x, mask):
        return self.generate(x, mask)

    def train_step(self, data):
        x, mask = data
        count = tf.maximum(global_sum(tf.reduce_sum(mask)), 1.0)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(mask * tf.square(self.generate(x, mask, training=True) - x)) / count
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.ae_optimizer.apply_gradients(zip(grads, self.net.trainable_variables))
        return {"reconstruction": global_sum(loss)}


@pytest.fixture
def toy_model():
    name = "toy_autoencoder_for_train_test"
    registry.register_model(name)(ToyAutoencoder)
    yield name
    registry._REGISTRY.pop(name, None)


def test_a_new_registered_model_trains_with_no_change_here(tmp_path, capsys, toy_model):
    logdir = str(tmp_path / "toy")
    argv = ["--model", toy_model, "--dataset", "breast", "--epochs", "2", "--batch-size", "128", "--logdir", logdir]
    summary, out = run_cli(argv, capsys)
    assert re.search(r"^epoch 2/2 +reconstruction \S+ +val_rmse \S+", out, re.M), out
    tags = tensors(logdir, "train")
    assert set(tags) == {"epoch_reconstruction", "epoch_ae_optimizer_learning_rate"}
    assert np.isfinite(np.array(tags["epoch_reconstruction"], dtype=float)).all()
    with open(os.path.join(logdir, "config.json")) as f:
        assert json.load(f)["params"] == {"seed": 0}


# --------------------------------------------------------------------------------------------------
# subprocesses: kill and resume, replicas, workers
# --------------------------------------------------------------------------------------------------
def _parse_final(out):
    match = re.search(r"^held-out RMSE (\S+) .* mean imputation (\S+);", out, re.M)
    assert match, out
    return float(match.group(1)), float(match.group(2))


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    logdir = tmp_path / "run"
    command = TRAIN + ["--model", "gain", "--dataset", "breast", "--epochs", "30", "--batch-size", "32", "--logdir", str(logdir)]
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            match = re.match(r"epoch (\d+)/30", line)
            if match and int(match.group(1)) >= 2:  # printed after the epoch's backup was written
                process.kill()
                break
    finally:
        watchdog.cancel()
        process.kill()
        process.wait(timeout=30)
        process.stdout.close()
    assert process.returncode != 0, "".join(seen)  # killed, not finished
    with open(logdir / "backup" / "training_metadata.json") as f:
        saved_epoch = json.load(f)["epoch"]
    assert 2 <= saved_epoch < 30

    rerun = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=150)
    out = rerun.stdout
    assert rerun.returncode == 0, out + rerun.stderr[-3000:]
    resumed = re.search(r"^resuming from the backup at epoch (\d+) \(optimizer steps: g_optimizer (\d+), d_optimizer (\d+)\)", out, re.M)
    assert resumed, out
    epoch = int(resumed.group(1))
    assert epoch in (saved_epoch, saved_epoch - 1)  # the previous backup if the kill hit a write
    steps_per_epoch = 455 // 32
    assert int(resumed.group(2)) == int(resumed.group(3)) == epoch * steps_per_epoch  # optimizer states restored
    numbers = [int(n) for n in re.findall(r"^epoch (\d+)/30", out, re.M)]
    assert numbers == list(range(epoch + 1, 31))
    assert not os.path.exists(logdir / "backup" / "latest.weights.h5")  # removed once training completed
    held_out, mean = _parse_final(out)
    assert held_out < mean
    # the best model over both runs (ModelCheckpoint restarts from the recorded best, not from +inf)
    scores = {int(e): float(v) for e, v in re.findall(r"^epoch (\d+)/30 .*val_rmse (\S+)", "".join(seen) + out, re.M)}
    with open(logdir / "best.json") as f:
        best = json.load(f)
    assert best["val_rmse"] == pytest.approx(min(scores.values()), abs=1e-4) and scores[best["epoch"]] == min(scores.values())
    assert held_out == pytest.approx(best["val_rmse"], abs=1e-4)
    model = keras.models.load_model(logdir / "best.keras", compile=False)
    rng = np.random.default_rng(0)
    x, mask = rng.random((10, 30)).astype(np.float32), (rng.random((10, 30)) > 0.3).astype(np.float32)
    assert np.isfinite(model.impute(x, mask).numpy()).all()


REPLICA_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from keraszoo.distribute import get_strategy
    two = get_strategy("mirrored", n_cpu_replicas=2)  # before any TensorFlow op
    import keras, numpy as np, tensorflow as tf
    from keraszoo.models.base import make_dataset
    from keraszoo.models.gain import GAIN
    from keraszoo.testing import breast_mcar

    truth, mask = breast_mcar()
    x, m = truth[:64], mask[:64]  # one global batch of 64 rows

    def one_step(strategy):
        # no randomness (every hint given, no noise) so 1 and 2 replicas can match exactly;
        # SGD, unlike Adam, shows any error in the gradient's scale
        with strategy.scope():
            model = GAIN(hint_rate=1.0, noise_scale=0.0, seed=3)
            model.build((None, x.shape[1]))
            model.compile(keras.optimizers.SGD(0.5), keras.optimizers.SGD(0.5), steps_per_execution=1)
            model.build_optimizers()
        before = model.get_weights()
        history = model.fit(make_dataset(x, m, 64, shuffle=False), epochs=1, steps_per_epoch=1, verbose=0)
        return model, before, model.get_weights(), {k: v[0] for k, v in history.history.items()}

    model1, before1, after1, logs1 = one_step(tf.distribute.get_strategy())
    model2, before2, after2, logs2 = one_step(two)

    @tf.function
    def draws():
        return two.run(lambda: model2.random_uniform((5,)))

    per_replica = [t.numpy().tolist() for t in two.experimental_local_results(draws())]
    print(json.dumps({
        "replicas": two.num_replicas_in_sync,
        "same_start": max(float(np.abs(a - b).max()) for a, b in zip(before1, before2)),
        "update": max(float(np.abs(a - b).max()) for a, b in zip(before1, after1)),
        "difference": max(float(np.abs(a - b).max()) for a, b in zip(after1, after2)),
        "logs1": logs1, "logs2": logs2, "draws": per_replica,
    }))
    """
)


def test_one_step_on_two_replicas_equals_one_step_on_one(tmp_path):
    result = subprocess.run([sys.executable, "-c", REPLICA_SCRIPT], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["same_start"] == 0.0
    assert report["update"] > 1e-3  # the step changed the weights noticeably
    assert report["difference"] < 1e-5 * max(1.0, report["update"]), report  # same update, to float tolerance
    for key in ("d_loss", "g_loss", "mse_observed"):
        assert report["logs2"][key] == pytest.approx(report["logs1"][key], rel=1e-5), key
    draws = report["draws"]
    assert len(draws) == 2 and draws[0] != draws[1]  # each replica draws its own noise and hints


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _h5_arrays(path):
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_two_workers_train_in_sync(tmp_path):
    logdir = tmp_path / "run"
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    command = TRAIN + ["--model", "gain", "--dataset", "breast", "--epochs", "2", "--batch-size", "64", "--logdir", str(logdir)]
    command += ["--strategy", "multiworker", "--seed", "2"]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                command, cwd=ROOT, env={**ENV, "TF_CONFIG": json.dumps(tf_config)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=150)[0])
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)
    for process, out in zip(processes, outputs):
        assert process.returncode == 0, out[-4000:]
    chief, worker = outputs
    assert "2 replica(s), worker 0 of 2 workers" in chief and "2 replica(s), worker 1 of 2 workers" in worker
    # the same losses and held-out RMSE on both workers, epoch by epoch (the lines without their timing)
    epoch_lines = [re.findall(r"^(epoch \d+/2 .*val_rmse \S+)", out, re.M) for out in outputs]
    assert len(epoch_lines[0]) == 2 and epoch_lines[0] == epoch_lines[1], epoch_lines
    _parse_final(chief)  # the chief scores the best model and writes the shared outputs
    weights = _h5_arrays(logdir / "final.weights.h5"), _h5_arrays(logdir / "workers" / "1" / "final.weights.h5")
    assert weights[0].keys() == weights[1].keys() and any("generator" in k for k in weights[0])
    for key in weights[0]:
        np.testing.assert_array_equal(weights[0][key], weights[1][key], err_msg=key)
    assert os.path.exists(logdir / "best.keras") and not os.path.exists(logdir / "workers" / "1" / "best.keras")
    with open(logdir / "config.json") as f:
        config = json.load(f)
    assert config["strategy"] == "multiworker" and config["replicas"] == 2 and config["workers"] == 2
    assert config["training"]["steps_per_execution"] == 1  # keraszoo.distribute.steps_per_execution_limit


def test_mar_forms_are_all_reachable_from_the_command_line(tmp_path, capsys):
    """--miss-rate used to be always passed (default 0.2), so eq. 26 as written could not be run under MAR."""
    assert train.miss_rate_for("mar", None, "letter") is None  # eq. 26 as written
    assert train.miss_rate_for("mar", "emflow", "letter") == 0.57  # emflow.md Table 4
    assert train.miss_rate_for("mar", 0.3, "breast") == 0.3  # calibrated offset
    assert train.miss_rate_for("mcar", None, "breast") == 0.2
    with pytest.raises(train.ConfigError, match="'emflow' is for --mechanism mar|--miss-rate emflow is for --mechanism mar"):
        train.miss_rate_for("mcar", "emflow", "breast")
    with pytest.raises(train.ConfigError, match="Table 4 gives no MAR missing rate for data set 'breast'"):
        train.miss_rate_for("mar", "emflow", "breast")
    literal = train.prepare_data("breast", "mar", None, seed=0)
    calibrated = train.prepare_data("breast", "mar", 0.3, seed=0)
    last = slice(21, 30)  # floor(0.7 * 30) = 21 columns always observed
    literal_rate = 1 - np.concatenate([literal.m_train, literal.m_val])[:, last].mean()
    calibrated_rate = 1 - np.concatenate([calibrated.m_train, calibrated.m_val])[:, last].mean()
    assert literal_rate > 0.5 and abs(calibrated_rate - 0.3) < 0.03, (literal_rate, calibrated_rate)
    summary, out = run_cli(
        ["--model", "gain", "--dataset", "breast", "--mechanism", "mar", "--epochs", "1", "--logdir", str(tmp_path / "mar")], capsys
    )
    assert "mar eq. 26 as written" in out
    with open(tmp_path / "mar" / "config.json") as f:
        assert json.load(f)["miss_rate"] is None


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
    assert "(default 100) --batch-size" in text and "(default 0.2) --max-rows" in text  # the help's own default, once
    assert "(default: 0)" in text and "(default: mcar)" in text  # argparse's, where the help states none


def test_val_fraction_is_checked_when_no_learning_rate_is_given():
    with pytest.raises(train.ConfigError, match="val_fraction must be in"):
        train.resolve_config("gain", sets={"val_fraction": "half"})
    assert train.resolve_config("gain", sets={"val_fraction": 0.3})[1]["val_fraction"] == 0.3


def test_a_models_own_batch_size_is_its_training_default():
    """not-MIWAE's `default_batch_size` is the authors' 16: training.train takes it, and every other source
    still overrides it."""
    assert train.resolve_config("notmiwae")[1]["batch_size"] == 16
    assert train.resolve_config("miwae")[1]["batch_size"] == train.TRAINING_DEFAULTS["batch_size"]
    assert train.resolve_config("notmiwae", sets={"batch_size": 64})[1]["batch_size"] == 64
