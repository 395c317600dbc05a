"""The numeric Datawig model: each column's network ignores its own column, every weight trains, and it
learns (beats mean imputation on breast cancer)."""
import numpy as np

from keraszoo.metrics import rmse
from keraszoo.models.datawig import DatawigImputer
from keraszoo.sklearn import ZooImputer
from keraszoo.testing import breast_mcar


def test_each_column_network_is_blind_to_its_own_column():
    model = DatawigImputer(units=8, seed=0)
    model.build((None, 5))
    rng = np.random.default_rng(0)
    x = rng.random((4, 5)).astype(np.float32)
    mask = np.ones_like(x)
    base = model.networks(x, mask).numpy()
    for j in range(5):
        changed_x, changed_mask = x.copy(), mask.copy()
        changed_x[:, j] += 3.0
        changed_mask[:, j] = 0.0
        out = model.networks(changed_x, changed_mask).numpy()
        np.testing.assert_allclose(out[:, j], base[:, j], rtol=1e-6)  # its own column: no effect
        assert not np.allclose(np.delete(out, j, axis=1), np.delete(base, j, axis=1))  # the others read it


def test_it_learns_and_every_weight_trains():
    truth, mask = breast_mcar(0.2, seed=0)
    x = np.where(mask == 1, truth, np.nan)
    imputer = ZooImputer("datawig", iterations=600, seed=0).fit(x)
    completed = imputer.transform(x)
    mean = ZooImputer("mean").fit(x).transform(x)
    assert rmse(truth, completed, mask) < 0.7 * rmse(truth, mean, mask)
    fresh = DatawigImputer(seed=0)
    fresh.build((None, truth.shape[1]))
    for trained, initial in zip(imputer.model_.networks.trainable_weights, fresh.networks.trainable_weights):
        assert not np.allclose(trained.numpy(), initial.numpy()), trained.path
