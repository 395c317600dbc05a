"""Fixtures shared by the runners' tests."""
import pytest


@pytest.fixture(scope="module")
def mnist_on_disk():
    """Skips the test unless MNIST is on disk (the runners never download in tests)."""
    from keraszoo.data import load_dataset
    from keraszoo.data.datasets import DatasetNotFoundError

    try:
        load_dataset("mnist", download=False)
    except DatasetNotFoundError:
        pytest.skip("MNIST is not on disk (set KERASZOO_DATA_DIR)")
