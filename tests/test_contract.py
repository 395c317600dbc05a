"""The contract every registered model keeps (keraszoo/contract.py), run on each model's own example.

Adding a model to the registry adds it to these tests: its class's `contract_example` says what data
it takes (a table or images, labels for classifiers) and which non-default parameters to check.
"""
import pytest

import keraszoo
from keraszoo import contract
from keraszoo.registry import model_task

ALL_MODELS = keraszoo.list_models()


def test_registry_lists_the_foundation_models():
    expected = {"gain", "zero", "mean", "median", "most_frequent", "knn", "mice", "missforest", "matrix", "em"}
    assert expected <= set(ALL_MODELS)
    assert "gain" in keraszoo.list_models("deep") and "knn" in keraszoo.list_models("classical")
    assert set(keraszoo.list_models(task="impute")) | set(keraszoo.list_models(task="classify")) == set(ALL_MODELS)
    assert all(model_task(name) == "impute" for name in keraszoo.list_models(task="impute"))


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        keraszoo.get_model("nope")


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_contract(name, check):
    check(name)


def test_exports_round_trip_in_a_fresh_process(tmp_path):
    names = [name for name in ALL_MODELS if contract.exportable(name)]
    assert "gain" in names and "knn" in names
    contract.check_exports(names, str(tmp_path))
