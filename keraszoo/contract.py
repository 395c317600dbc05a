"""The checks every registered model must pass, driven by the model's own `contract_example`.

`tests/test_contract.py` runs each check on every registered model; a new family gets them by
registering (its class's `contract_example` says what data it takes), with no edit to the tests. A
model defined in a test file runs the same checks by calling them with its registered name:

    from keraszoo import contract
    for check in contract.CHECKS:
        check("my_model")
    contract.check_exports(["my_model"], tmp_dir)   # SavedModel round trip in a fresh process

Each check raises AssertionError naming the model and what broke. Fitted models are cached per name
and parameters, so the checks of one model train it once.
"""
import json
import os
import subprocess
import sys

import numpy as np

from keraszoo.registry import get_model, get_model_class, is_deep, model_parameters, model_task

_FITTED = {}


def example(name):
    """The model's contract example: x (raw scale, NaN nowhere), mask (1 = observed), y, params, fit."""
    cls = get_model_class(name)
    found = dict(cls.contract_example())
    found.setdefault("y", None)
    found.setdefault("params", {})
    found.setdefault("fit", {})
    return found


def incomplete(x, mask):
    return np.where(np.asarray(mask) == 1, np.asarray(x, dtype=np.float64), np.nan)


def fitted(name):
    """A `ZooImputer` (or `ZooClassifier`) fitted on the model's example with its non-default params."""
    if name not in _FITTED:
        from keraszoo.sklearn import ZooClassifier, ZooImputer

        found = example(name)
        params = {**found["params"], **(found["fit"] if is_deep(name) else {})}
        if model_task(name) == "classify":
            estimator = ZooClassifier(name, **params).fit(incomplete(found["x"], found["mask"]), found["y"])
        else:
            estimator = ZooImputer(name, **params).fit(incomplete(found["x"], found["mask"]))
        _FITTED[name] = estimator
    return _FITTED[name]


def forget(name):
    """Drop the cached fitted model of `name` (for models registered only during a test)."""
    _FITTED.pop(name, None)


# --------------------------------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------------------------------
def check_parameters(name):
    """Unknown parameters are errors; the example's non-default parameters are real and reach get_config."""
    import keraszoo

    try:
        keraszoo.get_model(name, not_a_parameter=1)
    except ValueError as err:
        assert "valid parameters" in str(err), f"{name}: the error for an unknown parameter lists no valid ones: {err}"
    else:
        raise AssertionError(f"{name}: an unknown parameter was accepted")
    params = example(name)["params"]
    defaults = model_parameters(name)
    assert set(params) <= set(defaults), f"{name}: contract_example params {sorted(set(params) - set(defaults))} are not parameters"
    if any(k != "seed" for k in defaults):
        changed = {k for k, v in params.items() if v != defaults[k]}
        assert changed, f"{name}: contract_example must set non-default parameters so saving and configs are checked beyond defaults"
    config = get_model(name, **params).get_config()
    for key, value in params.items():
        assert key in config and _same(config[key], value), f"{name}: parameter {key}={value!r} is not in get_config ({config.get(key)!r})"


def check_config_round_trip(name):
    """`from_config(get_config())` rebuilds the same configuration, with non-default parameters."""
    model = get_model(name, **example(name)["params"])
    config = model.get_config()
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config, f"{name}: get_config round trip changed {config} into {rebuilt.get_config()}"


def check_observed_entries_unchanged(name):
    """Observed entries come back bit for bit (subnormals and extremes included), in scaled and raw space."""
    estimator = fitted(name)
    model = estimator.model_
    shape = tuple(estimator.model_input_shape_)
    rng = np.random.default_rng(7)
    specials = np.array([1.1276634e-38, -0.0, 3.4e38, 1e-45, 7.0, -2.0, 0.5], dtype=np.float32)
    for rows in (1, 3, 17):
        x = rng.uniform(-2.0, 3.0, (rows,) + shape).astype(np.float32)
        mask = (rng.random(x.shape) > 0.4).astype(np.float32)
        if model_task(name) == "classify":  # every row, even one with nothing observed, gets probabilities
            mask[0] = 0.0
            proba = np.asarray(model.predict_proba(x, mask))
            assert proba.shape == (rows, len(estimator.classes_)), f"{name}: predict_proba shape {proba.shape}"
            assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5), f"{name}: probabilities do not sum to 1"
            continue
        flat = x.reshape(rows, -1)
        flat[0, : min(flat.shape[1], len(specials))] = specials[: flat.shape[1]]
        mask.reshape(rows, -1)[0, : len(specials)] = 1.0
        out = np.asarray(model.impute(x, mask))
        assert out.shape == x.shape, f"{name}: impute returned shape {out.shape} for {x.shape}"
        assert np.isfinite(out).all(), f"{name}: impute returned a non-finite value"
        observed = mask == 1
        got = out[observed].astype(np.float32).view(np.uint32)
        assert np.array_equal(got, x[observed].view(np.uint32)), f"{name}: impute changed an observed entry"
    found = example(name)
    if model_task(name) == "impute":
        raw = incomplete(found["x"], found["mask"])
        completed = estimator.transform(raw)
        observed = found["mask"] == 1
        assert np.array_equal(completed[observed], raw[observed]), f"{name}: transform changed an observed entry"
        assert np.isfinite(completed).all(), f"{name}: transform left a missing or non-finite value"


def check_save_and_load(name, tmp_dir=None):
    """Saved and loaded (`.keras` for deep models), the estimator gives the same output and configuration."""
    import tempfile

    estimator = fitted(name)
    found = example(name)
    raw = incomplete(found["x"], found["mask"])
    with tempfile.TemporaryDirectory(dir=tmp_dir) as folder:
        estimator.save(folder)
        loaded = type(estimator).load(folder)
    assert loaded.get_params() == estimator.get_params(), f"{name}: parameters changed by save/load"
    if is_deep(name):
        assert loaded.model_.get_config() == estimator.model_.get_config(), f"{name}: the model's config changed by save/load"
    if model_task(name) == "classify":
        np.testing.assert_array_equal(loaded.predict_proba(raw), estimator.predict_proba(raw), err_msg=f"{name}: save/load changed predictions")
    else:
        np.testing.assert_array_equal(loaded.transform(raw), estimator.transform(raw), err_msg=f"{name}: save/load changed the imputation")


def check_sampling(name):
    """Generative imputers: `sample_imputations` has shape [n, rows, ...], its draws differ, and keep the
    observed entries; `impute` is deterministic. A model that is not generative refuses to sample."""
    estimator = fitted(name)
    model = estimator.model_
    if model_task(name) != "impute" or not is_deep(name):
        return
    found = example(name)
    x, mask = estimator._scaled(found["x"], found["mask"])
    x, mask = x[:6].astype(np.float32), mask[:6].astype(np.float32)
    first, second = np.asarray(model.impute(x, mask)), np.asarray(model.impute(x, mask))
    assert np.array_equal(first, second), f"{name}: impute is not deterministic"
    if not model.generative:
        try:
            model.sample_imputations(x, mask, 2)
        except NotImplementedError:
            return
        raise AssertionError(f"{name}: not generative, but sample_imputations did not refuse")
    draws = np.asarray(model.sample_imputations(x, mask, 3))
    assert draws.shape == (3,) + x.shape, f"{name}: sample_imputations shape {draws.shape}, expected {(3,) + x.shape}"
    missing = mask == 0
    assert not np.array_equal(draws[0][missing], draws[1][missing]), f"{name}: two draws are identical"
    for draw in draws:
        assert np.array_equal(draw[mask == 1], x[mask == 1]), f"{name}: a draw changed an observed entry"


CHECKS = [check_parameters, check_config_round_trip, check_observed_entries_unchanged, check_save_and_load, check_sampling]


def exportable(name):
    """Whether the model can be written as a SavedModel (deep models and classical ones with `tf_impute`)."""
    model = fitted(name).model_
    return is_deep(name) or model.exportable()


_EXPORT_CHECKER = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

jobs = json.load(open(sys.argv[1]))
for job in jobs:
    loaded = tf.saved_model.load(job["path"])
    data = np.load(job["inputs"])
    x = tf.constant(data["x"].astype(np.float32))
    outputs = {}
    default = loaded.signatures["serving_default"](x=x)
    outputs.update({f"default_{k}": v.numpy() for k, v in default.items()})
    if "impute_with_mask" in loaded.signatures:
        mask = tf.cast(tf.logical_not(tf.math.is_nan(x)), tf.float32)
        with_mask = loaded.signatures["impute_with_mask"](x=tf.where(mask > 0, x, tf.zeros_like(x)), mask=mask)
        outputs["with_mask"] = with_mask["imputed"].numpy()
    if "multiple_imputation" in loaded.signatures:
        draws = loaded.signatures["multiple_imputation"](x=x, n=tf.constant(2))
        outputs["draws"] = draws["imputations"].numpy()
    complete = tf.constant(data["complete"].astype(np.float32))
    if "log_prob" in loaded.signatures:
        outputs["log_prob"] = loaded.signatures["log_prob"](x=complete)["log_prob"].numpy()
    if "log_likelihood" in loaded.signatures:
        outputs["log_likelihood"] = loaded.signatures["log_likelihood"](x=complete, samples=tf.constant(4))["log_likelihood"].numpy()
    outputs["signatures"] = np.array(sorted(loaded.signatures.keys()))
    np.savez(job["outputs"], **outputs)
"""


def check_exports(names, tmp_dir):
    """Export each model and load it in a FRESH Python process (no keraszoo, no model class): the
    SavedModel alone must give the in-process result. One process checks every name (TensorFlow's
    start-up is paid once)."""
    from serving.export import export

    jobs, expected = [], {}
    for name in names:
        estimator = fitted(name)
        found = example(name)
        raw = incomplete(found["x"], found["mask"])[:10]
        path = export(estimator, os.path.join(tmp_dir, "export"), f"contract_{name}")
        inputs = os.path.join(tmp_dir, f"{name}_inputs.npz")
        np.savez(inputs, x=raw, complete=np.asarray(found["x"], np.float64)[:10])
        jobs.append({"path": path, "inputs": inputs, "outputs": os.path.join(tmp_dir, f"{name}_outputs.npz")})
        expected[name] = raw
    with open(os.path.join(tmp_dir, "jobs.json"), "w") as f:
        json.dump(jobs, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _EXPORT_CHECKER, os.path.join(tmp_dir, "jobs.json")],
        capture_output=True, text=True, timeout=600, cwd=tmp_dir, env=env,
    )
    assert result.returncode == 0, f"loading the exports in a fresh process failed:\n{result.stderr[-3000:]}"
    for name, job in zip(names, jobs):
        estimator = fitted(name)
        raw = expected[name]
        out = np.load(job["outputs"])
        signatures = set(out["signatures"].tolist())
        if model_task(name) == "classify":
            assert {"predict", "predict_with_mask", "serving_default"} <= signatures, f"{name}: signatures {signatures}"
            np.testing.assert_allclose(
                out["default_probabilities"], estimator.predict_proba(raw), rtol=1e-4, atol=1e-5, err_msg=f"{name}: exported predict differs"
            )
            continue
        assert {"impute_with_mask", "serving_default"} <= signatures, f"{name}: signatures {signatures}"
        imputed = out["default_imputed"]
        assert imputed.shape == raw.shape, f"{name}: exported imputation has shape {imputed.shape}, expected {raw.shape}"
        observed = ~np.isnan(raw)
        np.testing.assert_array_equal(imputed[observed], raw[observed].astype(np.float32), err_msg=f"{name}: export changed observed entries")
        np.testing.assert_allclose(imputed, estimator.transform(raw), rtol=1e-4, atol=1e-4, err_msg=f"{name}: exported imputation differs")
        np.testing.assert_allclose(out["with_mask"], imputed, rtol=1e-5, atol=1e-6, err_msg=f"{name}: impute_with_mask differs from serving_default")
        generative = is_deep(name) and estimator.model_.generative
        assert ("multiple_imputation" in signatures) == generative, f"{name}: multiple_imputation iff generative ({signatures})"
        if generative:
            draws = out["draws"]
            assert draws.shape == (2,) + raw.shape, f"{name}: exported draws have shape {draws.shape}"
            for draw in draws:
                np.testing.assert_array_equal(draw[observed], raw[observed].astype(np.float32), err_msg=f"{name}: a draw changed observed entries")
            assert np.abs(draws[0] - draws[1])[~observed].max() > 0, f"{name}: the two exported draws are equal at every missing entry"
        density = is_deep(name) and estimator.model_.density
        exact = is_deep(name) and estimator.model_.exact_density
        assert ("log_likelihood" in signatures) == density, f"{name}: log_likelihood iff density ({signatures})"
        assert ("log_prob" in signatures) == exact, f"{name}: log_prob iff exact_density ({signatures})"
        if exact:  # an exact density's estimate of a complete row is the density itself, whatever the samples
            assert out["log_prob"].shape == (len(raw),) and np.isfinite(out["log_prob"]).all(), f"{name}: log_prob {out['log_prob']}"
            np.testing.assert_allclose(out["log_likelihood"], out["log_prob"], rtol=1e-4, atol=1e-2,
                                       err_msg=f"{name}: log_likelihood of complete rows is not log_prob")


def _same(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b
