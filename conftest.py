"""Fixtures shared by every test folder (tests/ and the tests beside the models)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from keraszoo import testing


@pytest.fixture(scope="session")
def breast_mcar():
    """(truth, mask): breast-cancer table, min-max scaled, 20% MCAR with seed 0; 1 = observed."""
    return testing.breast_mcar()
