"""MIWAE's encoder and decoder: fully connected for tables, convolutional for images.

Tables follow the authors' TF2 notebook (MIWAE_UCI_single_multiple-imputation): width 128, three hidden
layers in the encoder and two in the decoder, He-normal kernels. Images follow the best public
reproduction of the paper's binarised-MNIST model (federicobergamin/MIWAE-PyTorch, see
`../shared/notes/reference-implementations.md` section 5): three 5x5 stride-2 convolutions (16, 32,
32 filters) -> 256 -> 2d, and its mirror image with transposed convolutions. The paper names "the
convolutional architecture of Salimans et al. (2015)" without giving it; that reproduction is our stand-in.
"""
import keras

from keraszoo.models.layers import spatial_halvings


def _he(seed):
    return keras.initializers.HeNormal(seed)


def table_encoder(n_features, hidden, latent_dim, activation, seed):
    """ι(x°) [D] -> hidden... -> [2 * latent_dim] (the mean and the raw scale of q(z | x°))."""
    inputs = keras.Input(shape=(n_features,))
    return keras.Model(inputs, _dense_layers(inputs, hidden, 2 * latent_dim, activation, seed), name="encoder")


def table_decoder(latent_dim, hidden, n_features, n_params, activation, seed):
    """z [d] -> hidden... -> [D, n_params] (the observation model's raw parameters, entry by entry)."""
    inputs = keras.Input(shape=(latent_dim,))
    outputs = keras.layers.Reshape((n_features, n_params))(_dense_layers(inputs, hidden, n_features * n_params, activation, seed))
    return keras.Model(inputs, outputs, name="decoder")


def _dense_layers(h, hidden, n_outputs, activation, seed):
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, activation=activation, kernel_initializer=_he(seed + i), name=f"hidden_{i}")(h)
    return keras.layers.Dense(n_outputs, kernel_initializer=_he(seed + len(hidden)), name="output")(h)


def image_encoder(example_shape, filters, dense_units, latent_dim, activation, seed):
    """ι(x°) [H, W, C] -> 5x5 stride-2 convolutions (`filters`, 2x, 2x) -> `dense_units` -> [2 * latent_dim]."""
    layer_seed = iter(range(seed, seed + 100))
    inputs = keras.Input(shape=tuple(example_shape))
    h = inputs
    for multiple in (1, 2, 2):
        h = keras.layers.Conv2D(multiple * filters, 5, strides=2, padding="same", activation=activation, kernel_initializer=_he(next(layer_seed)))(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(dense_units, activation=activation, kernel_initializer=_he(next(layer_seed)))(h)
    outputs = keras.layers.Dense(2 * latent_dim, kernel_initializer=_he(next(layer_seed)), name="output")(h)
    return keras.Model(inputs, outputs, name="encoder")


def image_decoder(latent_dim, example_shape, filters, dense_units, n_params, activation, seed):
    """z [d] -> `dense_units` -> the bottom resolution with 2x`filters` channels -> 5x5 stride-2 transposed
    convolutions -> a 5x5 convolution to [H, W, C, n_params] (on 28x28: 7x7x32 -> 14x14x32 -> 28x28x16)."""
    height, width, channels = example_shape
    halvings = spatial_halvings(height, width)
    bottom_h, bottom_w = height >> halvings, width >> halvings
    layer_seed = iter(range(seed, seed + 100))
    inputs = keras.Input(shape=(latent_dim,))
    h = keras.layers.Dense(dense_units, activation=activation, kernel_initializer=_he(next(layer_seed)))(inputs)
    h = keras.layers.Dense(bottom_h * bottom_w * 2 * filters, activation=activation, kernel_initializer=_he(next(layer_seed)))(h)
    h = keras.layers.Reshape((bottom_h, bottom_w, 2 * filters))(h)
    for i in range(halvings):
        units = 2 * filters if i < halvings - 1 else filters
        h = keras.layers.Conv2DTranspose(units, 5, strides=2, padding="same", activation=activation, kernel_initializer=_he(next(layer_seed)))(h)
    h = keras.layers.Conv2D(channels * n_params, 5, padding="same", kernel_initializer=_he(next(layer_seed)), name="output")(h)
    outputs = keras.layers.Reshape((height, width, channels, n_params))(h)
    return keras.Model(inputs, outputs, name="decoder")


class LearnedImputation(keras.layers.Layer):
    """ι of the notebooks: zero at missing entries plus a learned constant per feature (initialised to 0,
    so training starts from the paper's zero imputation)."""

    def __init__(self, example_shape, **kwargs):
        super().__init__(**kwargs)
        self.example_shape = tuple(int(s) for s in example_shape)
        self.constant = self.add_weight(name="constant", shape=self.example_shape, initializer="zeros")

    def call(self, x, mask):
        return mask * x + (1.0 - mask) * self.constant

    def get_config(self):
        return {**super().get_config(), "example_shape": self.example_shape}
