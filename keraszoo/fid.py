"""FID of MNIST images on a LeNet's 50 features, as MisGAN's evaluation computes it (and G2LGN's Table 2).

G2LGN reports FID 1.2467 on MNIST; that scale is not Inception's (hundreds at 50% missing) but that of
MisGAN's evaluation (steveli/misgan `mnist_fid.py`, `mnist_model.py`): a small LeNet trained on MNIST's
60,000 training images, its 50-d fc1 layer before the ReLU as features, and the Fréchet distance between
the Gaussians fitted to the features of two sets (Heusel et al. 2017):

    FID = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½).

The LeNet (`build_lenet`) is the PyTorch MNIST example's: conv 5x5x10, max-pool, ReLU, conv 5x5x20,
2-D dropout, max-pool, ReLU, fc 320 -> 50 (the features), ReLU, dropout, fc 50 -> 10. As in MisGAN's
code it is trained on inputs standardised with MNIST's mean 0.1307 and std 0.3081 (SGD, learning rate
0.01, momentum 0.5, batch 64) while FID features are taken from raw [0, 1] images: that mismatch is the
reference's, kept so the numbers are on its scale. MisGAN trains 100 epochs; `DEFAULT_EPOCHS` is
fewer to keep the first build to minutes on a CPU (its test accuracy is stored beside the weights).

`load_lenet` reads the trained network from the cache (`KERASZOO_CACHE_DIR`, else ~/.cache/keraszoo;
the directory the data sets are downloaded to) or trains it there from a fixed seed when it is absent.
"""
import json
import os
from pathlib import Path

import keras
import numpy as np

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FEATURE_LAYER = "fc1"
DEFAULT_EPOCHS = 10
DEFAULT_SEED = 1  # mnist_model.py's default seed


def build_lenet(seed=DEFAULT_SEED):
    """The LeNet of MisGAN's FID: [N, 28, 28, 1] standardised images -> 10 class logits."""
    init = iter(range(seed * 100, seed * 100 + 10))
    glorot = lambda: keras.initializers.GlorotUniform(next(init))  # noqa: E731
    inputs = keras.Input(shape=(28, 28, 1))
    h = keras.layers.Conv2D(10, 5, kernel_initializer=glorot(), name="conv1")(inputs)
    h = keras.layers.ReLU()(keras.layers.MaxPooling2D(2)(h))
    h = keras.layers.Conv2D(20, 5, kernel_initializer=glorot(), name="conv2")(h)
    h = keras.layers.SpatialDropout2D(0.5, seed=seed)(h)
    h = keras.layers.ReLU()(keras.layers.MaxPooling2D(2)(h))
    h = keras.layers.Flatten()(h)
    features = keras.layers.Dense(50, kernel_initializer=glorot(), name=FEATURE_LAYER)(h)
    h = keras.layers.Dropout(0.5, seed=seed + 1)(keras.layers.ReLU()(features))
    logits = keras.layers.Dense(10, kernel_initializer=glorot(), name="fc2")(h)
    return keras.Model(inputs, logits, name="lenet")


def _standardise(images):
    return (_as_images(images) - MNIST_MEAN) / MNIST_STD


def _as_images(images):
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] != (28, 28, 1):
        raise ValueError(f"LeNet FID takes MNIST-shaped images [N, 28, 28] or [N, 28, 28, 1], got {images.shape}")
    if not np.isfinite(images).all():
        raise ValueError("images hold NaN or infinite values: impute them before computing FID")
    return images


def train_lenet(images, labels, *, epochs=DEFAULT_EPOCHS, seed=DEFAULT_SEED, batch_size=64, test=None, verbose=0):
    """Train `build_lenet(seed)` on [0, 1] images with integer labels; returns (model, test accuracy or None)."""
    keras.utils.set_random_seed(seed)
    model = build_lenet(seed)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(_standardise(images), np.asarray(labels), batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    accuracy = None
    if test is not None:
        accuracy = float(model.evaluate(_standardise(test[0]), np.asarray(test[1]), batch_size=1000, verbose=0)[1])
    return model, accuracy


def lenet_path(seed=DEFAULT_SEED, epochs=DEFAULT_EPOCHS, cache_dir=None):
    from keraszoo.data.datasets import _cache_dir  # the data sets' cache: one place for downloaded and derived files

    return Path(cache_dir or _cache_dir()) / f"lenet_mnist_seed{seed}_epochs{epochs}.keras"


def load_lenet(seed=DEFAULT_SEED, epochs=DEFAULT_EPOCHS, cache_dir=None, data_dir=None, verbose=0):
    """The trained LeNet: from the cache, or trained on MNIST's training set (and cached) when absent.

    Beside the weights, ``<name>.json`` records how it was trained and its accuracy on MNIST's test set.
    """
    path = lenet_path(seed, epochs, cache_dir)
    if path.exists():
        return keras.saving.load_model(path)
    from keraszoo.data import load_dataset

    mnist = load_dataset("mnist", data_dir)
    model, accuracy = train_lenet(
        mnist.images / 255.0, mnist.labels.to_numpy(), epochs=epochs, seed=seed,
        test=(mnist.test_images / 255.0, mnist.test_labels), verbose=verbose,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.keras")
    model.save(temporary)
    os.replace(temporary, path)  # atomic: a concurrent reader sees no half-written file
    path.with_suffix(".json").write_text(
        json.dumps({"seed": seed, "epochs": epochs, "optimizer": "SGD(0.01, momentum=0.5)", "batch_size": 64,
                    "mnist_test_accuracy": accuracy}, indent=2)
    )
    return model


def lenet_accuracy(model, images, labels, batch_size=1000):
    """The LeNet's accuracy on complete [0, 1] images [N, 28, 28(, 1)] (standardised as it was trained):
    emflow.md Table 3's post-imputation accuracy when the images are imputed ones."""
    logits = model.predict(_standardise(images), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))


def lenet_features(model, images, batch_size=1000):
    """[N, 50] float64: the fc1 layer (before its ReLU) for raw [0, 1] images, as MisGAN's FID."""
    extractor = keras.Model(model.inputs, model.get_layer(FEATURE_LAYER).output)
    return np.asarray(extractor.predict(_as_images(images), batch_size=batch_size, verbose=0), dtype=np.float64)


def feature_statistics(features):
    """(mean, covariance) of [N, K] features (the sample covariance, N - 1 in the denominator)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors [N, K], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(statistics_a, statistics_b):
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) for two (mean, covariance) pairs."""
    from scipy import linalg

    (mu_a, sigma_a), (mu_b, sigma_b) = statistics_a, statistics_b
    root, _ = linalg.sqrtm(sigma_a @ sigma_b, disp=False)
    if not np.isfinite(root).all():  # singular product: offset the diagonals (as pytorch-fid does)
        offset = np.eye(sigma_a.shape[0]) * 1e-6
        root = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    root = np.real(root)  # rounding leaves tiny imaginary parts
    distance = float(np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(root))
    return max(distance, 0.0)


def fid(images, reference_images, model=None):
    """FID between two sets of MNIST images in [0, 1] ([N, 28, 28] or [N, 28, 28, 1]) on LeNet features."""
    model = model or load_lenet()
    return frechet_distance(
        feature_statistics(lenet_features(model, images)), feature_statistics(lenet_features(model, reference_images))
    )
