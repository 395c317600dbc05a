"""MisGAN's sub-networks: the reference code's MNIST shapes, fully connected for tables.

Generators map a latent vector to an example; critics map an example to one unbounded score (WGAN);
the imputer maps a noisy example to a full one. Layers are seeded base, base + 1, ... so a model is
reproducible. Kernels use Keras's default Glorot uniform, not PyTorch's default of the reference code.
"""
import keras

from keraszoo.models.layers import mlp, spatial_halvings


def _glorot(seed):
    return keras.initializers.GlorotUniform(seed)


def table_generator(latent_dim, n_features, hidden, seed, name):
    """FC generator latent -> hidden... -> D (the reference's 128 -> 256 -> 512 -> 784 with 784 = D).

    Outputs logits; the model applies the data's sigmoid or the mask's transform."""
    return mlp(latent_dim, hidden, n_features, None, seed=seed, name=name, initializer=_glorot)


def table_critic(n_features, hidden, seed, name):
    """FC critic D -> hidden... -> 1 (the reference's 784 -> 512 -> 256 -> 128 -> 1).

    No output bias: the WGAN loss E[D(fake)] − E[D(real)] and the gradient penalty do not depend on it, so
    it would never train (the reference's stays at its initial value)."""
    return mlp(n_features, hidden, 1, None, seed=seed, name=name, initializer=_glorot, output_bias=False)


def image_generator(latent_dim, example_shape, filters, seed, name):
    """Convolutional generator in the WGAN-GP shape of the reference's MNIST generator, for any [H, W, C].

    latent -> dense to the bottom resolution with 4 * `filters` channels -> 5x5 stride-2 transposed
    convolutions halving the channels (ReLU) -> a 5x5 convolution to C channels (logits). On 28x28: 7x7x256
    -> 14x14x128 -> 28x28x64 -> 28x28x1 (the reference goes 4x4 -> 7x7 by cropping, then to 28 with an 8x8
    kernel: the same resolutions, a simpler path).
    """
    height, width, channels = example_shape
    halvings = spatial_halvings(height, width)
    bottom_h, bottom_w = height >> halvings, width >> halvings
    layer_seed = iter(range(seed, seed + 100))
    inputs = keras.Input(shape=(latent_dim,))
    h = keras.layers.Dense(bottom_h * bottom_w * 4 * filters, activation="relu", kernel_initializer=_glorot(next(layer_seed)))(inputs)
    h = keras.layers.Reshape((bottom_h, bottom_w, 4 * filters))(h)
    for i in range(halvings):
        h = keras.layers.Conv2DTranspose(
            (2 * filters) >> i, 5, strides=2, padding="same", activation="relu", kernel_initializer=_glorot(next(layer_seed))
        )(h)
    outputs = keras.layers.Conv2D(channels, 5, padding="same", kernel_initializer=_glorot(next(layer_seed)), name="output")(h)
    return keras.Model(inputs, outputs, name=name)


def image_critic(example_shape, filters, seed, name):
    """The reference's MNIST critic: three 5x5 stride-2 convolutions (`filters`, 2x, 4x; ReLU) -> one score
    (no output bias, see `table_critic`)."""
    layer_seed = iter(range(seed, seed + 100))
    inputs = keras.Input(shape=tuple(example_shape))
    h = inputs
    for multiple in (1, 2, 4):
        h = keras.layers.Conv2D(
            multiple * filters, 5, strides=2, padding="same", activation="relu", kernel_initializer=_glorot(next(layer_seed))
        )(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(1, use_bias=False, kernel_initializer=_glorot(next(layer_seed)), name="output")(h)
    return keras.Model(inputs, outputs, name=name)


def imputer_network(example_shape, hidden, seed, name="imputer"):
    """The reference's default ("comp") imputer, fully connected also for images: the noisy example
    flattened -> hidden... (ReLU) -> D with a sigmoid, reshaped back (784 -> 784 -> 784 -> 784 -> 784 on MNIST)."""
    n_features = 1
    for size in example_shape:
        n_features *= int(size)
    inputs = keras.Input(shape=tuple(example_shape))
    flat = keras.layers.Flatten()(inputs) if len(example_shape) > 1 else inputs
    body = mlp(n_features, hidden, n_features, "sigmoid", seed=seed, name=f"{name}_mlp", initializer=_glorot)
    outputs = body(flat)
    if len(example_shape) > 1:
        outputs = keras.layers.Reshape(tuple(example_shape))(outputs)
    return keras.Model(inputs, outputs, name=name)
