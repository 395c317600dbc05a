"""The tabular imputer on real tables (scikit-learn's wine and breast cancer): it learns, completes, keeps
observed cells and dtypes, saves, calibrates, and names every bad input."""
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from keraszoo.tabular import SimpleImputer, TableImputer, complete
from keraszoo.tabular import calibration
from keraszoo.tabular.columns import infer_kind

FAST = {"epochs": 40, "patience": 5}


def wine_frame():
    """scikit-learn's wine table with its cultivar as a string category column."""
    data = load_wine(as_frame=True)
    frame = data.data.copy()
    frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[data.target]
    return frame


def split(frame, seed=0, test=0.3):
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test = int(test * len(frame))
    return frame.iloc[order[n_test:]], frame.iloc[order[:n_test]]


def test_a_categorical_column_is_learned_from_the_others_and_beats_the_most_frequent_class():
    train, test = split(wine_frame())
    inputs = [c for c in train.columns if c != "cultivar"]
    train_before, test_before = train.copy(), test.copy()
    imputer = SimpleImputer(inputs, "cultivar", seed=0).fit(train, **FAST)
    predicted = imputer.predict(test)
    pd.testing.assert_frame_equal(train, train_before)  # fit and predict never modify their frames
    pd.testing.assert_frame_equal(test, test_before)
    accuracy = np.mean(predicted["cultivar_imputed"] == test["cultivar"])
    most_frequent = np.mean(test["cultivar"] == train["cultivar"].mode()[0])
    assert accuracy >= 0.9 > most_frequent + 0.4, (accuracy, most_frequent)
    probabilities = predicted["cultivar_imputed_proba"]
    assert ((probabilities > 0.3) & (probabilities <= 1)).all()
    report = imputer.precision_recall_["cultivar"]
    assert set(report["class"]) == {"barolo", "grignolino", "barbera"} and report["support"].sum() == imputer.calibration_["cultivar"]["validation_rows"]


def test_a_numeric_column_is_learned_and_beats_the_mean():
    data = load_breast_cancer(as_frame=True).data
    train, test = split(data)
    inputs = [c for c in data.columns if c not in ("mean radius", "mean perimeter", "mean area", "worst radius", "worst perimeter", "worst area")]
    imputer = SimpleImputer(inputs, "mean radius", seed=0).fit(train, **FAST)
    predicted = imputer.predict(test)["mean radius_imputed"].to_numpy()
    rmse = np.sqrt(np.mean((predicted - test["mean radius"].to_numpy()) ** 2))
    mean_rmse = np.sqrt(np.mean((train["mean radius"].mean() - test["mean radius"].to_numpy()) ** 2))
    assert rmse < 0.6 * mean_rmse, (rmse, mean_rmse)


def holed_wine(rate=0.1, seed=0):
    frame = wine_frame()
    frame["cultivar"] = frame["cultivar"].astype("category")
    frame["proline"] = frame["proline"].round().astype("Int64")  # a nullable integer column
    truth = frame.copy()
    hide = np.random.default_rng(seed).random(frame.shape) < rate
    holed = frame.copy()
    for j, name in enumerate(frame.columns):
        holed.loc[hide[:, j], name] = pd.NA if name == "proline" else np.nan
    return truth, holed, hide


def test_complete_fills_every_cell_keeps_observed_cells_and_dtypes_and_beats_mean_and_mode():
    truth, holed, hide = holed_wine()
    before = holed.copy()
    out = complete(holed, per_column=False, seed=0, fit_params=FAST)
    pd.testing.assert_frame_equal(holed, before)  # the input is not modified
    assert out.isna().sum().sum() == 0 and out.attrs["cells_left_missing"] == {name: 0 for name in holed.columns}
    assert out.dtypes.to_dict() == holed.dtypes.to_dict()
    assert list(out["cultivar"].cat.categories) == list(holed["cultivar"].cat.categories)
    for j, name in enumerate(holed.columns):
        kept = ~hide[:, j]
        assert (out[name][kept] == truth[name][kept]).all(), name
    rows = hide[:, -1]
    assert np.mean(out["cultivar"][rows] == truth["cultivar"][rows]) > np.mean(truth["cultivar"][rows] == holed["cultivar"].mode()[0]) + 0.3
    numeric = [c for c in holed.columns if c != "cultivar"]
    errors = {"ours": [], "mean": []}
    for name in numeric:
        j = holed.columns.get_loc(name)
        true = truth[name].to_numpy(float)[hide[:, j]]
        scale = truth[name].max() - truth[name].min()
        errors["ours"].append(np.mean(((out[name].to_numpy(float)[hide[:, j]] - true) / scale) ** 2))
        errors["mean"].append(np.mean(((holed[name].astype(float).mean() - true) / scale) ** 2))
    assert np.sqrt(np.mean(errors["ours"])) < 0.85 * np.sqrt(np.mean(errors["mean"])), errors


def test_complete_per_column_as_datawig_and_the_precision_threshold_leaves_counted_cells_missing():
    truth, holed, hide = holed_wine(rate=0.2, seed=1)
    columns = ["cultivar", "alcohol"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = complete(holed, precision_threshold=1.0, columns=columns, per_column=True, seed=0, fit_params=FAST)
    left = out.attrs["cells_left_missing"]
    assert set(left) == set(columns) and left["alcohol"] == 0  # numeric imputations are never withheld
    assert out["cultivar"].isna().sum() == left["cultivar"]
    if left["cultivar"]:
        assert any("left missing" in str(w.message) for w in caught)
    assert out["alcohol"].isna().sum() == 0
    untouched = [c for c in holed.columns if c not in columns]
    pd.testing.assert_frame_equal(out[untouched], holed[untouched])
    imputed = out["cultivar"][hide[:, -1]].dropna()
    assert (imputed == truth["cultivar"][imputed.index]).mean() >= 0.9


def test_save_and_load_give_identical_predictions(tmp_path):
    train, test = split(wine_frame())
    inputs = [c for c in train.columns if c != "cultivar"]
    imputer = SimpleImputer(inputs, "cultivar", numeric_bins=4, seed=0).fit(train, epochs=5)
    imputer.save(tmp_path / "imputer")
    loaded = SimpleImputer.load(tmp_path / "imputer")
    a, b = imputer.predict(test, precision_threshold=0.9), loaded.predict(test, precision_threshold=0.9)
    pd.testing.assert_frame_equal(a, b)
    assert loaded.calibration_ == imputer.calibration_
    pd.testing.assert_frame_equal(loaded.precision_recall_["cultivar"], imputer.precision_recall_["cultivar"])


def test_unicode_text_and_unseen_categories_are_inputs_the_model_uses():
    rng = np.random.default_rng(0)
    n = 600
    label = rng.integers(0, 3, n)
    words = np.array(["café crème brûlée", "борщ со сметаной", "寿司と味噌汁"])
    text = [f"{words[k]} №{rng.integers(1000)} {'★' * rng.integers(1, 4)}" for k in label]
    frame = pd.DataFrame(
        {"dish": text, "noise": rng.normal(size=n), "shop": rng.choice(["a", "b"], n), "cuisine": np.array(["fr", "ru", "jp"])[label]}
    )
    assert infer_kind(frame["dish"]) == "text" and infer_kind(frame["shop"]) == "categorical"
    train, test = frame.iloc[:450], frame.iloc[450:].copy()
    test.loc[test.index[:20], "shop"] = "never seen"
    imputer = SimpleImputer(["dish", "noise", "shop"], "cuisine", seed=0).fit(train, **FAST)
    predicted = imputer.predict(test)
    assert np.mean(predicted["cuisine_imputed"] == test["cuisine"]) >= 0.95


def test_the_lstm_text_encoder_trains_every_weight():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 200)
    frame = pd.DataFrame({"note": [("good stuff " if k else "bad thing ") + str(rng.integers(100)) for k in label], "y": np.array(["no", "yes"])[label]})
    start = {}

    class Start(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            start.update({w.path: w.numpy().copy() for w in self.model.trainable_weights})

    imputer = SimpleImputer(["note"], "y", text_encoder="lstm", seed=0).fit(frame, epochs=3, callbacks=[Start()])
    before = list(start.values())
    after = [w.numpy() for w in imputer.network.trainable_weights]
    assert len(before) == len(after) > 5
    changed = [not np.allclose(a, b) for a, b in zip(before, after)]
    assert all(changed), [w.path for w, c in zip(imputer.network.trainable_weights, changed) if not c]


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(20000, 4))
    p = calibration.probabilities(logits, 2.0)
    labels = np.array([rng.choice(4, p=row) for row in p])
    assert calibration.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.05)
    assert calibration.expected_calibration_error(p, labels) < 0.02 < calibration.expected_calibration_error(calibration.probabilities(logits), labels)


def test_precision_cutoffs_are_the_lowest_probability_that_reaches_the_precision():
    top = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.9, 0.5])
    predicted = np.array([0, 0, 0, 0, 0, 1, 1])
    correct = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    cutoffs = calibration.precision_cutoffs(top, predicted, correct, 3, precision=0.75)
    # class 0: precision 1, 1, 1, 0.75, 0.6 going down: the cut-off is 0.7; class 1 never right; class 2 never predicted
    assert cutoffs.tolist() == [0.7, np.inf, np.inf]
    assert calibration.precision_cutoffs(top, predicted, correct, 3, precision=0.0).tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda f: (f.assign(cultivar=np.nan), "cultivar"), "column 'cultivar' has no observed value"),
        (lambda f: (f.iloc[:0], "cultivar"), "the frame is empty"),
        (lambda f: (f.assign(alcohol=[1.0, "x"] * 89), "cultivar"), "column 'alcohol' mixes value types"),
        (lambda f: (f, "no such column"), "unknown column(s) 'no such column'"),
    ],
)
def test_bad_frames_get_an_error_that_names_the_problem(make, message):
    frame, output = make(wine_frame())
    inputs = ["alcohol", "malic_acid"]
    with pytest.raises(ValueError) as error:
        SimpleImputer(inputs, output).fit(frame, epochs=1)
    assert message in str(error.value)


def test_bad_arguments_get_an_error_that_names_the_column():
    with pytest.raises(ValueError, match="'cultivar' is both the output column and an input column"):
        SimpleImputer(["alcohol", "cultivar"], "cultivar")
    frame = wine_frame().assign(review=[f"review number {i}" for i in range(178)])
    with pytest.raises(ValueError, match="column 'review' is free text"):
        SimpleImputer(["alcohol"], "review").fit(frame, epochs=1)
    with pytest.raises(ValueError, match="column 'review' is free text"):
        complete(frame.assign(review=frame["review"].where(frame.index > 3)), columns=["review"])
    with pytest.raises(RuntimeError, match="not fitted"):
        SimpleImputer(["alcohol"], "cultivar").predict(frame)
    with pytest.raises(ValueError, match="complete: the frame is empty"):
        complete(frame.iloc[:0])
    with pytest.raises(ValueError, match="column 'alcohol' has no observed value"):
        complete(frame.assign(alcohol=np.nan))
    # a column with one observed value is completed with it (the documented result), without training
    single = frame[["alcohol", "cultivar"]].assign(cultivar=["barolo"] * 100 + [np.nan] * 78, alcohol=[13.0] * 170 + [np.nan] * 8)
    completed = complete(single)
    assert (completed["cultivar"] == "barolo").all() and (completed["alcohol"] == 13.0).all()


def test_a_table_imputer_predicts_several_outputs_that_are_also_inputs():
    train, test = split(wine_frame())
    imputer = TableImputer(list(train.columns), ["cultivar", "alcohol", "flavanoids"], seed=0).fit(train, **FAST)
    predicted = imputer.predict(test)
    assert np.mean(predicted["cultivar_imputed"] == test["cultivar"]) >= 0.85
    for name in ("alcohol", "flavanoids"):  # each predicted with its own cell hidden: not a copy of it
        assert not np.allclose(predicted[f"{name}_imputed"], test[name])
        assert np.sqrt(np.mean((predicted[f"{name}_imputed"] - test[name]) ** 2)) < test[name].std()


def test_savedmodel_export_takes_raw_named_columns_and_serves_what_the_imputer_predicts(tmp_path):
    """A SimpleImputer and a Completer exported, reloaded, and served over gRPC: the same imputations as in
    process; observed cells pass through; column names outside TF's alphabet get safe keys."""
    import tensorflow as tf

    from keraszoo.tabular import Completer
    from keraszoo.tabular.export import export, signature_keys
    from serving.client import ImputeClient
    from serving.server import ImputationServer, make_manager

    truth, holed, hide = holed_wine(rate=0.2, seed=2)
    holed = holed.rename(columns={"od280/od315_of_diluted_wines": "od280/od315 (diluted)"})
    holed["cellar"] = pd.Series(["north"] * len(holed)).where(np.arange(len(holed)) % 9 > 0).to_numpy()  # one value: a constant
    keys = signature_keys(holed.columns)
    assert keys["od280/od315 (diluted)"] == "od280_od315__diluted_" and keys["alcohol"] == "alcohol"

    inputs = [c for c in holed.columns if c != "cultivar"]
    imputer = SimpleImputer(inputs, "cultivar", seed=0).fit(holed, epochs=3)  # few epochs: this test checks the export, not learning
    completer = Completer(columns=["cultivar", "alcohol", "proline", "cellar"], per_column=False, seed=0, fit_params={"epochs": 3}).fit(holed)
    base = tmp_path / "models"
    imputer_dir = export(imputer, str(base), "wine_cultivar", precision_threshold=0.9)
    completer_dir = export(completer, str(base), "wine_complete")

    def request(frame, columns):
        return {
            keys[c]: (frame[c].to_numpy(np.float32, na_value=np.nan) if c not in ("cultivar", "cellar") else frame[c].astype(object).fillna("").astype(str).to_numpy(object))
            for c in columns
        }

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = imputer.predict(holed, precision_threshold=0.9)
    served = tf.saved_model.load(imputer_dir).signatures["serving_default"](**{k: tf.constant(v) for k, v in request(holed, inputs).items()})
    labels = [v.decode() or None for v in served["cultivar_imputed"].numpy()]
    assert labels == [None if pd.isna(v) else v for v in expected["cultivar_imputed"]]
    np.testing.assert_allclose(served["cultivar_imputed_proba"].numpy(), expected["cultivar_imputed_proba"], rtol=1e-5)

    completed = completer.transform(holed)
    out = tf.saved_model.load(completer_dir).signatures["serving_default"](**{k: tf.constant(v) for k, v in request(holed, holed.columns).items()})
    assert [v.decode() for v in out["cultivar"].numpy()] == list(completed["cultivar"].astype(str))
    np.testing.assert_allclose(out["alcohol"].numpy(), completed["alcohol"], rtol=1e-5)
    assert {v.decode() for v in out["cellar"].numpy()} == {"north"} and (completed["cellar"] == "north").all()
    observed = holed["alcohol"].notna().to_numpy()
    np.testing.assert_array_equal(out["alcohol"].numpy()[observed], holed["alcohol"].to_numpy(np.float32)[observed])
    # proline is a nullable integer column: the export gives the unrounded value, `transform` rounds it
    np.testing.assert_allclose(out["proline"].numpy(), completed["proline"].astype(float), atol=0.5)

    server = ImputationServer(make_manager(model_base_path=str(base), poll_seconds=0), port=0, rest_port=0)
    server.start()
    try:
        with ImputeClient(f"127.0.0.1:{server.grpc_port}") as client:
            rows = holed.iloc[:7]
            response = client.predict("wine_complete", request(rows, holed.columns))
            got = tf.make_ndarray(response.outputs["cultivar"])
            assert [v.decode() for v in got] == list(completed["cultivar"].astype(str).iloc[:7])
            bad = request(rows, holed.columns)
            bad["alcohol"] = bad["alcohol"].astype(object).astype(str)
            with pytest.raises(Exception, match="INVALID_ARGUMENT|dtype"):
                client.predict("wine_complete", bad)
        # REST, row format: strings and numbers (null = missing) in, strings and numbers out
        import json
        import urllib.request

        instances = [
            {keys[c]: (None if pd.isna(rows[c].iloc[i]) else (str(rows[c].iloc[i]) if c in ("cultivar", "cellar") else float(rows[c].iloc[i]))) for c in holed.columns}
            for i in range(len(rows))
        ]
        for instance in instances:  # "" is a missing string
            instance.update({k: "" for k in ("cultivar", "cellar") if instance[k] is None})
        url = f"http://127.0.0.1:{server.rest_port}/v1/models/wine_complete:predict"
        body = json.dumps({"instances": instances}).encode()
        with urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}), timeout=30) as reply:
            predictions = json.loads(reply.read())["predictions"]
        assert [p["cultivar"] for p in predictions] == list(completed["cultivar"].astype(str).iloc[:7])
        np.testing.assert_allclose([p["alcohol"] for p in predictions], completed["alcohol"].iloc[:7], rtol=1e-5)
    finally:
        server.stop()


def test_hyper_parameter_search_keeps_the_best_trial_and_respects_its_budget():
    import time

    train, test = split(wine_frame())
    inputs = [c for c in train.columns if c != "cultivar"]
    imputer = SimpleImputer(inputs, "cultivar", seed=0)
    space = {"hidden_units": [[4], [64]], "learning_rate": [1e-3, 1e-2]}
    imputer.fit_hpo(train, space=space, max_trials=3, time_budget_seconds=120, epochs=60)
    results = imputer.hpo_results_
    assert len(results) == 3 and results["val_loss"].is_monotonic_increasing
    best = results.iloc[0]
    assert imputer.network.hidden_units == best["hidden_units"] and imputer.history.history["val_loss"]
    assert min(imputer.history.history["val_loss"]) == pytest.approx(best["val_loss"])
    assert np.mean(imputer.predict(test)["cultivar_imputed"] == test["cultivar"]) >= 0.85
    start = time.monotonic()
    few = SimpleImputer(inputs, "cultivar", seed=0).fit_hpo(train, space=space, max_trials=50, time_budget_seconds=3, epochs=100, patience=100)
    assert time.monotonic() - start < 60 and 1 <= len(few.hpo_results_) < 50


def test_complete_with_hpo_searches_each_column_within_its_share_of_the_budget():
    from keraszoo.tabular import Completer

    truth, holed, hide = holed_wine(rate=0.2, seed=3)
    space = {"hidden_units": [[8], [64]], "learning_rate": [4e-3]}
    completer = Completer(columns=["cultivar", "alcohol"], hpo={"space": space, "max_trials": 2, "time_budget_seconds": 60}, seed=0, fit_params={"epochs": 3})
    out = completer.fit(holed).transform(holed)
    assert out[["cultivar", "alcohol"]].isna().sum().sum() == 0
    for imputer in completer.imputers:
        assert len(imputer.hpo_results_) == 2 and set(imputer.hpo_results_["hidden_units"].map(tuple)) == {(8,), (64,)}
    with pytest.raises(ValueError, match="needs per_column=True"):
        Completer(per_column=False, hpo={})


def test_the_piecewise_linear_encoding_of_numeric_columns():
    from keraszoo.tabular.layers import NumericEncoder

    encoder = NumericEncoder(mean=2.0, std=2.0, edges=[0.0, 1.0, 3.0, 7.0])
    features, observed = encoder(np.array([-1.0, 0.5, 2.0, 7.0, 9.0, np.nan], np.float32))
    np.testing.assert_allclose(
        features.numpy(),
        [[-1.5, 0, 0, 0], [-0.75, 0.5, 0, 0], [0, 1, 0.5, 0], [2.5, 1, 1, 1], [3.5, 1, 1, 1], [0, 0, 0, 0]],
        rtol=1e-6,
    )
    assert observed.numpy().tolist() == [1, 1, 1, 1, 1, 0]
    frame = load_breast_cancer(as_frame=True).data.iloc[:, :8]
    train, test = split(frame)
    imputer = SimpleImputer(list(frame.columns[1:]), "mean radius", numeric_bins=8, seed=0).fit(train, epochs=5)
    assert imputer.specs["mean texture"].edges and len(imputer.specs["mean texture"].edges) == 9
    assert imputer.network.encoders[0].width == 9


def test_rounds_chain_imputers_on_the_completed_table_in_process_and_in_the_savedmodel(tmp_path):
    """rounds=2: round 2's imputers are trained on the table round 1 completed; a numeric imputation is
    the mean of both rounds', a categorical one round 2's; the export chains the rounds the same way."""
    import tensorflow as tf

    from keraszoo.tabular import Completer
    from keraszoo.tabular.export import export

    truth, holed, hide = holed_wine(rate=0.2, seed=4)
    columns = ["cultivar", "alcohol", "proline"]
    completer = Completer(columns=columns, rounds=2, seed=0, fit_params={"epochs": 3}).fit(holed)  # the chain, not learning, is checked
    first, second = completer.imputer_rounds
    assert len(first) == len(second) == 3 and completer.imputers is second
    out = completer.transform(holed)
    for j, name in enumerate(holed.columns):
        kept = ~hide[:, j]
        assert (out[name][kept] == truth[name][kept]).all(), name
    assert out[columns].isna().sum().sum() == 0 and out.dtypes.to_dict() == holed.dtypes.to_dict()

    # the chain, rebuilt from the imputers: round 1 reads the holed table, round 2 the table round 1 filled
    missing = {name: holed[name].isna().to_numpy() for name in columns}
    stage = holed.copy()
    round_one = {}
    for imputer in first:
        name = imputer.output_column
        round_one[name] = imputer.predict_values(holed.loc[missing[name]], hide_targets=False)[name][0]
        if name == "cultivar":
            stage.loc[missing[name], name] = round_one[name]
        else:
            values = np.array(stage[name].to_numpy(float, na_value=np.nan))
            values[missing[name]] = round_one[name].astype(float)
            stage[name] = pd.array(np.round(values), dtype="Int64") if name == "proline" else values
    # round 2 learned from stage's inputs: its training frame is the same table with its own column holed
    assert second[1].specs["proline"].mean == pytest.approx(float(stage["proline"].astype(float).mean()))
    for imputer in second:
        name = imputer.output_column
        round_two = imputer.predict_values(stage.loc[missing[name]], hide_targets=False)[name][0]
        if name == "cultivar":
            assert list(out["cultivar"][missing[name]].astype(str)) == list(round_two)
        else:
            expected = (round_one[name].astype(float) + round_two.astype(float)) / 2
            got = out[name][missing[name]].astype(float).to_numpy()
            np.testing.assert_allclose(got, np.round(expected) if name == "proline" else expected, rtol=1e-6)

    served = tf.saved_model.load(export(completer, str(tmp_path), "wine_rounds")).signatures["serving_default"]
    request = {c: tf.constant(holed[c].to_numpy(np.float32, na_value=np.nan) if c != "cultivar" else holed[c].astype(object).fillna("").astype(str).to_numpy(object)) for c in holed.columns}
    result = served(**{k.replace("/", "_"): v for k, v in request.items()})
    assert [v.decode() for v in result["cultivar"].numpy()] == list(out["cultivar"].astype(str))
    np.testing.assert_allclose(result["alcohol"].numpy(), out["alcohol"], rtol=1e-5)
    np.testing.assert_allclose(result["proline"].numpy(), out["proline"].astype(float), atol=0.5)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="rounds must be a whole number"):
            Completer(rounds=bad)
    with pytest.raises(ValueError, match="rounds > 1 .* needs per_column=True"):
        Completer(per_column=False, rounds=2)
