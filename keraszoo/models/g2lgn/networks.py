"""G2LGN's sub-networks: fully connected for tables, convolutional for images (g2lgn.md Fig. 2).

Every builder takes `init(seed)`, the kernel initializer factory (Xavier/Glorot uniform by default, see
`G2LGN`), and a base seed; layers are seeded base, base + 1, ... so a model is reproducible.
"""
import keras

from keraszoo.models.layers import mlp


class _Seeds:
    def __init__(self, init, seed):
        self.init, self.next_seed = init, seed

    def __call__(self):
        self.next_seed += 1
        return self.init(self.next_seed)


# --- tables ----------------------------------------------------------------------------------------
def table_generator(n_features, hidden, init, seed, name="global_generator"):
    """G_g (eq. 1): [X~, M, (1 - M) * Z] -> a value in [0, 1] for every column."""
    return mlp(3 * n_features, hidden, n_features, "sigmoid", seed=seed, name=name, initializer=init)


def table_discriminator(n_inputs, hidden, n_outputs, init, seed, name):
    """D_g or D_l: [completed values, hint] -> one logit per column (eq. 3's per-component output)."""
    return mlp(2 * n_inputs, hidden, n_outputs, None, seed=seed, name=name, initializer=init)


def table_local_generator(width, guide_channels, hidden, init, seed, name="local_generator"):
    """G_l (eq. 7): x^_cdd = [E(eps), M_local] ([width * (guide_channels + 1)]) -> the region's values."""
    return mlp(width * (guide_channels + 1), hidden, width, "sigmoid", seed=seed, name=name, initializer=init)


# --- images ----------------------------------------------------------------------------------------
def _conv(filters, seeds, dilation=1, strides=1, activation="relu", kernel=3, name=None):
    return keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", dilation_rate=dilation, activation=activation,
        kernel_initializer=seeds(), name=name,
    )


def image_generator(example_shape, filters, init, seed, name="global_generator"):
    """G_g for images: [X~, M, (1 - M) * Z] stacked on channels -> [H, W, C] in [0, 1].

    An encoder-decoder with dilated convolutions at half resolution (the shape of Iizuka et al.'s
    completion network, which section 2.3 follows, scaled down for MNIST on CPUs): 3x3 convs, one
    stride-2 down, dilations 2 and 4 at half resolution, nearest upsampling and a 3x3 conv back to full
    resolution, a sigmoid output; cropped back to odd sizes.
    """
    height, width, channels = example_shape
    seeds = _Seeds(init, seed)
    inputs = keras.Input(shape=(height, width, 3 * channels))
    h = _conv(filters, seeds)(inputs)
    h = _conv(2 * filters, seeds, strides=2)(h)
    h = _conv(2 * filters, seeds, dilation=2)(h)
    h = _conv(2 * filters, seeds, dilation=4)(h)
    h = keras.layers.UpSampling2D(2)(h)
    h = _conv(filters, seeds)(h)
    extra_h, extra_w = h.shape[1] - height, h.shape[2] - width
    if extra_h or extra_w:
        h = keras.layers.Cropping2D(((0, extra_h), (0, extra_w)))(h)
    outputs = _conv(channels, seeds, activation="sigmoid", name="output")(h)
    return keras.Model(inputs, outputs, name=name)


def image_discriminator(example_shape, filters, init, seed, name):
    """D_g or D_l for images: [completed, hint] -> one logit per pixel and channel (fully convolutional,
    dilations 1, 2, 4: a 15x15 receptive field, so a pixel is judged against its neighbourhood)."""
    height, width, channels = example_shape
    seeds = _Seeds(init, seed)
    inputs = keras.Input(shape=(height, width, 2 * channels))
    h = _conv(filters, seeds)(inputs)
    h = _conv(filters, seeds, dilation=2)(h)
    h = _conv(filters, seeds, dilation=4)(h)
    outputs = _conv(channels, seeds, activation=None, kernel=1, name="output")(h)
    return keras.Model(inputs, outputs, name=name)


def image_local_generator(local_shape, guide_channels, filters, init, seed, name="local_generator"):
    """G_l for images: x^_cdd = [E(eps), M_local] on channels -> the patch's values in [0, 1]."""
    height, width, channels = local_shape
    seeds = _Seeds(init, seed)
    inputs = keras.Input(shape=(height, width, guide_channels + channels))
    h = _conv(filters, seeds)(inputs)
    h = _conv(filters, seeds, dilation=2)(h)
    h = _conv(filters, seeds)(h)
    outputs = _conv(channels, seeds, activation="sigmoid", name="output")(h)
    return keras.Model(inputs, outputs, name=name)


# --- shared ----------------------------------------------------------------------------------------
def guide_network(local_shape, guide_channels, hidden, projection_only, output_activation, init, seed, name="guide"):
    """f_FC (eq. 5) and E (eq. 6): the selected region x_cdd -> eps, expanded to the region's shape.

    f_FC is fully connected with ReLU (the paper's words) on the flattened region; its last layer has
    region-size x `guide_channels` units, so E is a reshape to [*local_shape[:-1], guide_channels] for
    images ([width * guide_channels] for tables). `projection_only` (the ablation "w/o f_FC") replaces
    the perceptron by one linear projection of the same output size.
    """
    n_local = 1
    for s in local_shape:
        n_local *= int(s)
    spatial = tuple(local_shape[:-1]) if len(local_shape) == 3 else ()
    n_out = (n_local // local_shape[-1] if spatial else n_local) * guide_channels
    seeds = _Seeds(init, seed)
    inputs = keras.Input(shape=tuple(local_shape))
    h = keras.layers.Flatten()(inputs) if spatial else inputs
    if not projection_only:
        for units in hidden:
            h = keras.layers.Dense(units, activation="relu", kernel_initializer=seeds())(h)
    h = keras.layers.Dense(n_out, activation=None if projection_only and output_activation == "relu" else output_activation,
                           kernel_initializer=seeds(), name="epsilon")(h)
    if spatial:
        h = keras.layers.Reshape(spatial + (guide_channels,))(h)
    return keras.Model(inputs, h, name=name)


class PassThrough(keras.initializers.Initializer):
    """A kernel [k * n, n] whose first n rows are the identity and the rest zeros."""

    def __call__(self, shape, dtype=None):
        n_in, n_out = shape
        return keras.ops.concatenate([keras.ops.eye(n_out, dtype=dtype), keras.ops.zeros((n_in - n_out, n_out), dtype=dtype)], axis=0)


def fusion_network(n_inputs, n_outputs, init, seed, pass_through=True, name="fusion"):
    """Section 2.3: the discriminators' outputs, concatenated ([n_inputs], D_g's first), through one fully
    connected layer: one logit per entry (the sigmoid is applied in the loss).

    `pass_through`: the layer starts as D_g's logits passed through (identity on D_g's block, zeros on
    the rest), so D starts as GAIN's per-component discriminator and learns how much D_l adds; with a
    random (Xavier) start every entry's logit mixes every other entry's, which the discriminator must
    first unlearn.
    """
    kernel = PassThrough() if pass_through else init(seed)
    return keras.Sequential([keras.Input(shape=(n_inputs,)), keras.layers.Dense(n_outputs, kernel_initializer=kernel)], name=name)
