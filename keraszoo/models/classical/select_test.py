"""`iterative_select` chooses each column's learner by validation error, learns on a real table, and
imputes new rows without refitting."""
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

import keraszoo


def test_each_column_gets_the_learner_its_relation_needs():
    rng = np.random.default_rng(0)
    a, b = rng.random(400), rng.random(400)
    table = np.column_stack([a, b, 0.2 + 0.6 * a, (b > 0.5).astype(float) * 0.8 + 0.1 * rng.random(400)])
    observed = rng.random(table.shape) > 0.2
    model = keraszoo.get_model("iterative_select", candidates=["linear", "extra_trees"], max_iter=2)
    model.fit_arrays(np.where(observed, table, 0.0), observed.astype(float))
    choices = model.choices()
    assert choices.loc[2, "chosen"] == "linear", choices  # a straight line of column 0
    assert choices.loc[3, "chosen"] == "extra_trees", choices  # a step in column 1
    assert choices.loc[3, "mse: extra_trees"] < 0.5 * choices.loc[3, "mse: linear"]


def test_it_beats_the_mean_on_a_real_table_and_imputes_new_rows_alone():
    x = load_breast_cancer().data[:300, :10]
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    observed = np.random.default_rng(1).random(x.shape) > 0.2
    shown, mask = np.where(observed, x, 0.0), observed.astype(float)
    model = keraszoo.get_model("iterative_select", max_iter=2, n_estimators=10).fit_arrays(shown[:250], mask[:250])
    imputed = model.impute(shown, mask)
    np.testing.assert_array_equal(imputed[observed], x[observed])
    mean = keraszoo.get_model("mean").fit_arrays(shown[:250], mask[:250]).impute(shown, mask)
    ours, baseline = (float(np.sqrt(((m - x)[~observed] ** 2).mean())) for m in (imputed, mean))
    assert ours < 0.7 * baseline, (ours, baseline)  # measured: 0.0854 against the mean's 0.1585
    np.testing.assert_allclose(model.impute(shown[250:], mask[250:]), imputed[250:], rtol=0, atol=1e-12)
    assert set(model.choices()["chosen"]) <= {"linear", "extra_trees", "gradient_boosting", "knn"}


def test_bad_parameters_are_refused_with_a_clear_error():
    for params, message in [
        ({"candidates": "linear"}, "list of learner names"),
        ({"candidates": ["linear", "xgboost"]}, "distinct names"),
        ({"candidates": []}, "distinct names"),
        ({"folds": 1}, "folds"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1}, "tol"),
    ]:
        with pytest.raises(ValueError, match=message):
            keraszoo.get_model("iterative_select", **params)


@pytest.mark.parametrize("candidates", [["linear"], ["extra_trees"], ["gradient_boosting"], ["knn"], ["linear", "extra_trees", "gradient_boosting", "knn"]])
def test_the_tensorflow_replay_equals_the_fitted_chain(candidates):
    import tensorflow as tf

    x = load_breast_cancer().data[:160, :6]
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    observed = np.random.default_rng(2).random(x.shape) > 0.25
    shown, mask = np.where(observed, x, 0.0), observed.astype(float)
    model = keraszoo.get_model("iterative_select", candidates=candidates, max_iter=2, n_estimators=5, folds=2)
    model.fit_arrays(shown[:120], mask[:120])
    if len(candidates) > 1:
        assert len(set(model.choices()["chosen"])) > 1, model.choices()  # a mixed chain
    expected = model.impute(shown, mask)  # 40 new rows and the training rows
    replayed = model.tf_impute(tf.constant(shown, tf.float64), tf.constant(mask, tf.float64)).numpy()
    np.testing.assert_allclose(replayed, expected, rtol=0, atol=1e-9)
    assert model.exportable()
