"""Small building blocks shared by the zoo's networks."""
import keras


def gain_reference_init(seed):
    """The initializer of GAIN's reference code: N(0, 1 / sqrt(fan_in / 2)), untruncated.

    The code calls it `xavier_init`, but its standard deviation sqrt(2 / fan_in) is He's, not
    Glorot's sqrt(2 / (fan_in + fan_out)). GAIN uses it to be faithful to the code behind the paper's
    numbers. On letter (20% MCAR, seeds 0-2) it gave RMSE 0.1276 against 0.1318 with Glorot normal, and
    the same on spam and credit (0.0531 / 0.0528, 0.1338 / 0.1337); over the benchmark's 5 seeds letter
    moved from 0.1301 to 0.1287 with a std of 0.0046, so the gain is within noise. Its larger start
    needs a few more steps on wide data (MNIST's 784 columns: worse than the mean after 6 steps).
    """
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=seed)


def torch_default_init(seed):
    """PyTorch's default initializer of `nn.Conv2d` and `nn.Linear` weights: kaiming_uniform(a=sqrt(5)),
    that is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (variance 1 / (3 fan_in), a sixth of He's).

    The MisConv supplement's classifiers (section 1.2) use it, as the authors' PyTorch code does
    (biases stay at zero). With He-normal, Adam at the paper's 1e-3 killed the lin_20 ReLUs of the
    classifier behind a 12,544-wide flatten: on MNIST trapezoids (8,000 images, 3 epochs) `misconv_mask`
    lost all 20 units in seed 0 and predicted one class (test accuracy 0.1135, seeds 1-2: 0.1669, 0.2854);
    with this initializer it reached 0.5649 / 0.5974 / 0.5852, and `misconv_zero` on squares 0.8448
    against 0.8303 (seed 0).
    """
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform", seed=seed)


def mlp(n_inputs, hidden_units, n_outputs, output_activation, seed, name, initializer=keras.initializers.GlorotNormal, output_bias=True):
    """A fully connected network n_inputs -> hidden_units... -> n_outputs, ReLU inside.

    `initializer(seed)` makes each layer's kernel initializer (Glorot normal by default), seeded
    `seed`, `seed + 1`, ... layer by layer. Built immediately (its input size is known), so weights
    exist before `fit` — needed to build optimizers up front under a distribution strategy.
    `output_bias=False` drops the output layer's bias (a WGAN critic's, which no loss can move).
    """
    layers = [keras.Input(shape=(n_inputs,))]
    for i, units in enumerate(hidden_units):
        layers.append(
            keras.layers.Dense(units, activation="relu", kernel_initializer=initializer(seed + i), name=f"hidden_{i}")
        )
    layers.append(
        keras.layers.Dense(
            n_outputs,
            activation=output_activation,
            kernel_initializer=initializer(seed + len(hidden_units)),
            use_bias=output_bias,
            name="output",
        )
    )
    return keras.Sequential(layers, name=name)


def spatial_halvings(height, width, most=2):
    """How many stride-2 steps both sides allow (28 -> 2: 7x7 at the bottom, 8 -> 2, odd sizes -> 0)."""
    halvings = 0
    while halvings < most and height % 2 == 0 and width % 2 == 0:
        height, width, halvings = height // 2, width // 2, halvings + 1
    return halvings


def conv_relu_bn(filters, strides=1, transpose=False, seed=0, kernel_size=3, initializer=keras.initializers.HeNormal):
    """The supplement's conv_n (misconv-supplement.md section 1): a convolution ("same" padding, kernel
    from `initializer(seed)`, He-normal by default), ReLU, then BatchNorm; stride 2 for its down steps,
    ``transpose=True`` for its up steps."""
    layer = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
    return [
        layer(filters, kernel_size, strides=strides, padding="same", activation="relu", kernel_initializer=initializer(seed)),
        keras.layers.BatchNormalization(),
    ]
