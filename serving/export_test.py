import os
import subprocess
import sys

import numpy as np
import pytest

from keraszoo.sklearn import ZooImputer
from serving.export import export


@pytest.fixture(scope="module")
def fitted_and_rows():
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:, :10].astype(np.float32)
    rng = np.random.default_rng(0)
    incomplete = np.where(rng.random(x.shape) < 0.2, np.nan, x)
    imputer = ZooImputer("gain", iterations=200).fit(incomplete[:400])
    return imputer, incomplete[400:460]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fitted_and_rows):
    imputer, _ = fitted_and_rows
    return export(imputer, str(tmp_path_factory.mktemp("models")), "gain_breast", version=3)


def test_layout_and_signatures(exported):
    assert exported.endswith(os.path.join("gain_breast", "3"))
    assert os.path.exists(os.path.join(exported, "saved_model.pb"))
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", exported, "--all"], capture_output=True, text=True, check=True).stdout
    for signature in ("serving_default", "impute_with_mask", "multiple_imputation"):
        assert f"signature_def['{signature}']" in shown
    assert "outputs['imputed']" in shown and "inputs['x']" in shown


# A fresh process loading each model's export (serving_default and impute_with_mask against transform,
# observed entries kept, draws that differ) is checked for every model: tests/test_contract.py.


def test_bad_exports_are_refused(tmp_path, fitted_and_rows, exported):
    imputer, rows = fitted_and_rows
    with pytest.raises(ValueError, match="plain directory name"):
        export(imputer, str(tmp_path), "../escape")
    with pytest.raises(ValueError, match="positive integer"):
        export(imputer, str(tmp_path), "gain", version=0)
    with pytest.raises(FileExistsError, match="immutable"):
        export(imputer, os.path.dirname(os.path.dirname(exported)), "gain_breast", version=3)
    with pytest.raises(NotImplementedError, match="no TensorFlow imputation"):  # its draws cannot be replayed
        export(ZooImputer("mice", sample_posterior=True).fit(rows), str(tmp_path), "mice")
    with pytest.raises(ValueError, match="fitted"):
        export(ZooImputer("gain"), str(tmp_path), "gain")


# smaller than the defaults where fitting would be slow
EXPORT_PARAMS = {"missforest": {"n_estimators": 5, "max_iter": 2, "n_jobs": 1}}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # mice/missforest stop at max_iter
@pytest.mark.parametrize(
    "name", ["zero", "mean", "median", "most_frequent", "em", "matrix", "knn", "mice", "missforest"]
)
def test_classical_baselines_export_and_match(tmp_path, fitted_and_rows, name):
    import tensorflow as tf

    _, rows = fitted_and_rows
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data[:400, :10]
    train = np.where(np.random.default_rng(1).random(x.shape) < 0.2, np.nan, x)
    imputer = ZooImputer(name, **EXPORT_PARAMS.get(name, {})).fit(train)
    path = export(imputer, str(tmp_path), name)
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "impute_with_mask"}
    out = loaded.signatures["serving_default"](x=tf.constant(rows))["imputed"].numpy()
    np.testing.assert_allclose(out, imputer.transform(rows), rtol=1e-5, atol=1e-5)
    observed = ~np.isnan(rows)
    np.testing.assert_array_equal(out[observed], rows[observed])


def test_models_config_lists_every_exported_model(tmp_path, fitted_and_rows):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    imputer, rows = fitted_and_rows
    export(imputer, str(tmp_path), "gain_a", version=1)
    export(imputer, str(tmp_path), "gain_a", version=2)
    export(ZooImputer("mean").fit(rows), str(tmp_path), "mean_b")
    (tmp_path / "not_a_model").mkdir()
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((tmp_path / "models.config").read_text(), config)
    entries = {c.name: c for c in config.model_config_list.config}
    assert set(entries) == {"gain_a", "mean_b"}
    assert entries["gain_a"].base_path == str(tmp_path / "gain_a") and entries["gain_a"].model_platform == "tensorflow"


def test_missforest_export_agrees_on_the_full_table(tmp_path):
    """Default MissForest on all 30 breast-cancer columns: scaling in float32 instead of float64 flipped
    tree splits for about 1 entry in 800; the export must agree with transform on every entry."""
    import warnings

    import tensorflow as tf
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data.astype(np.float32)  # the rows a client sends are float32
    incomplete = np.where(np.random.default_rng(0).random(x.shape) < 0.2, np.nan, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IterativeImputer's convergence warning
        imputer = ZooImputer("missforest", n_jobs=1).fit(incomplete)
        expected = imputer.transform(incomplete)
    loaded = tf.saved_model.load(export(imputer, str(tmp_path), "missforest"))
    out = loaded.signatures["serving_default"](x=tf.constant(incomplete))["imputed"].numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_warmup_requests_fit_image_and_classifier_signatures(tmp_path):
    """The warm-up writer follows each signature's inputs: images [rows, H, W, C] scaled per channel,
    classifiers' names, `n` for draws; a signature with inputs it cannot fill gets no record."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from serving.export import WARMUP_ROWS, write_warmup_requests

    image = tf.TensorSpec([None, 4, 3, 2], tf.float32, name="x")
    mask = tf.TensorSpec([None, 4, 3, 2], tf.float32, name="mask")
    signatures = {
        "predict": tf.function(lambda x: {"p": x}, input_signature=[image]),
        "predict_with_mask": tf.function(lambda x, mask: {"p": x}, input_signature=[image, mask]),
        "multiple_imputation": tf.function(lambda x, n: {"p": x}, input_signature=[image, tf.TensorSpec([], tf.int32, name="n")]),
        "by_text": tf.function(lambda x, words: {"p": x}, input_signature=[image, tf.TensorSpec([None], tf.string, name="words")]),
    }
    low, span = np.array([10.0, -5.0]), np.array([2.0, 1.0])  # per channel
    path = write_warmup_requests(str(tmp_path), "img", signatures, low, span, (4, 3, 2))
    assert path == str(tmp_path / "assets.extra" / "tf_serving_warmup_requests")
    requests = [prediction_log_pb2.PredictionLog.FromString(r.numpy()).predict_log.request for r in tf.data.TFRecordDataset(path)]
    assert sorted(r.model_spec.signature_name for r in requests) == sorted(
        name for name in ("predict", "predict_with_mask", "multiple_imputation") for _ in WARMUP_ROWS
    )
    for request in requests:
        assert request.model_spec.name == "img"
        x = tf.make_ndarray(request.inputs["x"])
        assert x.dtype == np.float32 and x.shape[1:] == (4, 3, 2) and x.shape[0] in WARMUP_ROWS
        if "mask" in request.inputs:  # missing entries are 0 in x and in mask
            m = tf.make_ndarray(request.inputs["mask"])
            assert set(np.unique(m)) <= {0.0, 1.0} and not np.isnan(x).any()
            x = np.where(m > 0, x, np.nan)
        assert np.isnan(x).any() and not np.isnan(x).all()  # some values missing, some observed
        for channel in range(2):  # every observed value inside its channel's fitted range
            values = x[..., channel][~np.isnan(x[..., channel])]
            assert ((values >= low[channel]) & (values <= low[channel] + span[channel])).all()
        assert ("n" in request.inputs) == (request.model_spec.signature_name == "multiple_imputation")
