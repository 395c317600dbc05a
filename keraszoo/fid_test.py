"""LeNet FID: the Fréchet distance itself, and on a LeNet trained briefly on real MNIST digits."""
import numpy as np
import pytest

from keraszoo import fid


def test_frechet_distance_of_known_gaussians():
    """Equal covariances: FID is the squared distance of the means; scaled covariances: the closed form."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    shifted = a + np.array([1.0, 2.0, 0.0])
    assert abs(fid.frechet_distance(fid.feature_statistics(a), fid.feature_statistics(shifted)) - 5.0) < 1e-6
    # N(0, I) against N(0, 4 I) in 3-d: 3 (1 + 4 - 2 * 2) = 3
    exact = fid.frechet_distance((np.zeros(3), np.eye(3)), (np.zeros(3), 4 * np.eye(3)))
    assert abs(exact - 3.0) < 1e-9


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="28, 28"):
        fid._as_images(np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        fid._as_images(np.full((4, 28, 28), np.nan))
    with pytest.raises(ValueError, match="at least 2"):
        fid.feature_statistics(np.zeros((1, 50)))


@pytest.fixture(scope="module")
def small_mnist():
    from keraszoo.data import load_dataset
    from keraszoo.data.datasets import DatasetNotFoundError

    try:
        mnist = load_dataset("mnist", download=False)
    except DatasetNotFoundError:
        pytest.skip("MNIST is not on disk (set KERASZOO_DATA_DIR)")
    return mnist.images[:3000] / 255.0, mnist.labels.to_numpy()[:3000], mnist.test_images[:2000] / 255.0


def test_lenet_fid_is_zero_on_itself_and_grows_with_noise(small_mnist, tmp_path):
    images, labels, test_images = small_mnist
    model, _ = fid.train_lenet(images, labels, epochs=1, seed=0)
    reference = fid.feature_statistics(fid.lenet_features(model, test_images[:1000]))
    assert fid.frechet_distance(reference, reference) < 1e-6
    rng = np.random.default_rng(0)
    noise = rng.normal(size=test_images[:1000].shape)
    scores = [
        fid.frechet_distance(reference, fid.feature_statistics(fid.lenet_features(model, np.clip(test_images[:1000] + s * noise, 0, 1))))
        for s in (0.0, 0.1, 0.2, 0.4)
    ]
    assert scores[0] < 1e-6 and all(a < b for a, b in zip(scores, scores[1:])), scores
    # two halves of real digits are far closer than either is to noisy digits
    other = fid.feature_statistics(fid.lenet_features(model, test_images[1000:2000]))
    assert fid.frechet_distance(reference, other) < scores[1], (fid.frechet_distance(reference, other), scores)


def test_load_lenet_trains_once_and_reads_the_cache(small_mnist, tmp_path, monkeypatch):
    """Absent: trained (here on a small set, through the same path) and written; present: read back, same weights."""
    images, labels, _ = small_mnist
    calls, train = [], fid.train_lenet

    def quick_train(images_, labels_, **kwargs):
        calls.append(dict(kwargs))
        quick = {k: v for k, v in kwargs.items() if k != "test"}
        quick["epochs"] = 1
        return train(images[:500], labels[:500], **quick)

    monkeypatch.setattr(fid, "train_lenet", quick_train)
    first = fid.load_lenet(seed=3, epochs=2, cache_dir=tmp_path)
    assert (tmp_path / "lenet_mnist_seed3_epochs2.keras").exists() and (tmp_path / "lenet_mnist_seed3_epochs2.json").exists()
    second = fid.load_lenet(seed=3, epochs=2, cache_dir=tmp_path)
    assert len(calls) == 1 and calls[0]["seed"] == 3 and calls[0]["epochs"] == 2
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
