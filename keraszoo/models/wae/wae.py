"""WAE: a Wasserstein autoencoder (Tolstikhin et al. 2018, WAE-GAN) as an image imputer, MisConv's "WAE"
baseline (misconv-supplement.md section 1.3).

Architecture (section 1.3, MNIST; conv_n = convolution-ReLU-BatchNorm, down / up = stride-2 convolution /
transposed convolution, lin_n = dense + ReLU):

* encoder: conv32, conv40, down, conv80, down, lin_latent (20, linear: the code z);
* decoder: lin (H/4 * W/4 * 80: 3,920 on MNIST), up, conv80, up, [conv40] x 2, conv_C (sigmoid: pixels in [0, 1]);
* discriminator on codes: [lin64] x 4, lin1 (a logit).

Kernels 3x3 (the supplement gives none). Learning rates 4e-4 for the autoencoder and 4e-6 for the
discriminator, batch 128, 20 epochs (section 1.3).

Incomplete images (our reading; the supplement does not say how the WAE meets missing pixels): the
encoder reads the image with missing pixels at 0 and its mask as channels (as DMFA does, A1.1), the
reconstruction cost is the WAE paper's squared L2 distance taken over the observed pixels only (summed
per image, averaged over images), and `impute` fills the missing pixels with the decoder's output.
The penalty is WAE-GAN's: a discriminator tells codes of the data from draws of the prior N(0, I), and
the encoder pays `penalty_weight` (λ, 1 as the WAE paper's MNIST WAE-GAN) times -log D(z). Each step:
discriminator step, then autoencoder step against the updated discriminator.
"""
import keras
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum, positive_int
from keraszoo.models.layers import conv_relu_bn
from keraszoo.registry import register_model


@register_model("wae")
class WAE(DeepImputer):
    """Wasserstein autoencoder imputer for images (module docstring)."""

    example_kinds = ("image",)
    optimizer_networks = {"ae_optimizer": ("encoder", "decoder"), "d_optimizer": "discriminator"}
    default_learning_rates = {"ae_optimizer": 4e-4, "d_optimizer": 4e-6}
    default_batch_size = 128
    default_iterations = 9_400  # 20 epochs of MNIST's 60,000 images at batch 128
    default_steps_per_execution = 10

    def __init__(self, latent=20, widths=(32, 40, 80), discriminator_units=64, penalty_weight=1.0, seed=0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.latent = positive_int(latent, "latent")
        if not isinstance(widths, (list, tuple)) or len(widths) != 3:
            raise ValueError(f"widths must be three positive integers (32, 40, 80 in section 1.3), got {widths!r}")
        self.widths = [positive_int(w, f"widths[{i}]") for i, w in enumerate(widths)]
        self.discriminator_units = positive_int(discriminator_units, "discriminator_units")
        if isinstance(penalty_weight, bool) or not isinstance(penalty_weight, (int, float)) or penalty_weight < 0:
            raise ValueError(f"penalty_weight must be a non-negative number, got {penalty_weight!r}")
        self.penalty_weight = float(penalty_weight)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("d_loss", "ae_loss", "reconstruction")}

    def build_networks(self, example_shape):
        height, width, channels = example_shape
        if height % 4 or width % 4:
            raise ValueError(f"the WAE halves images twice: height and width must divide by 4, got {height}x{width}")
        small, middle, large = self.widths
        s = self.seed * 100
        self.encoder = keras.Sequential(
            [keras.Input((height, width, 2 * channels))]
            + conv_relu_bn(small, seed=s)
            + conv_relu_bn(middle, seed=s + 1)
            + conv_relu_bn(middle, 2, seed=s + 2)  # down
            + conv_relu_bn(large, seed=s + 3)
            + conv_relu_bn(large, 2, seed=s + 4)  # down
            + [keras.layers.Flatten(), keras.layers.Dense(self.latent, kernel_initializer=keras.initializers.GlorotUniform(s + 5))],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [
                keras.Input((self.latent,)),
                keras.layers.Dense(height // 4 * width // 4 * large, activation="relu", kernel_initializer=keras.initializers.HeNormal(s + 10)),
                keras.layers.Reshape((height // 4, width // 4, large)),
            ]
            + conv_relu_bn(large, 2, transpose=True, seed=s + 11)  # up
            + conv_relu_bn(large, seed=s + 12)
            + conv_relu_bn(middle, 2, transpose=True, seed=s + 13)  # up
            + conv_relu_bn(middle, seed=s + 14)
            + conv_relu_bn(middle, seed=s + 15)
            + [keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid", kernel_initializer=keras.initializers.GlorotUniform(s + 16))],
            name="decoder",
        )
        self.discriminator = keras.Sequential(
            [keras.Input((self.latent,))]
            + [keras.layers.Dense(self.discriminator_units, activation="relu", kernel_initializer=keras.initializers.HeNormal(s + 20 + i)) for i in range(4)]
            + [keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(s + 25))],
            name="discriminator",
        )

    @property
    def metrics(self):
        return list(self.trackers.values())

    def encode(self, x, mask, training=False):
        return self.encoder(tf.concat([x * mask, mask], axis=-1), training=training)

    def train_step(self, data):
        x, mask = data
        x = tf.where(mask > 0, x, tf.zeros_like(x))
        images = tf.cast(global_sum(tf.shape(x)[0]), tf.float32)
        prior = self.random_normal([tf.shape(x)[0], self.latent])

        # discriminator step: codes of the data (label 0) against draws of the prior (label 1)
        codes = self.encode(x, mask, training=True)
        with tf.GradientTape() as d_tape:
            d_loss = self.penalty_weight * tf.reduce_sum(
                tf.nn.softplus(-self.discriminator(prior, training=True)) + tf.nn.softplus(self.discriminator(codes, training=True))
            ) / images
        d_weights = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_weights), d_weights))

        # autoencoder step: the observed pixels' squared error plus λ (-log D(z)) against the updated discriminator
        ae_weights = self.encoder.trainable_variables + self.decoder.trainable_variables
        with tf.GradientTape() as ae_tape:
            codes = self.encode(x, mask, training=True)
            reconstruction = tf.reduce_sum(mask * tf.square(self.decoder(codes, training=True) - x)) / images
            penalty = tf.reduce_sum(tf.nn.softplus(-self.discriminator(codes, training=True))) / images
            ae_loss = reconstruction + self.penalty_weight * penalty
        self.ae_optimizer.apply_gradients(zip(ae_tape.gradient(ae_loss, ae_weights), ae_weights))
        return self.record(self.trackers, {"d_loss": d_loss, "ae_loss": ae_loss, "reconstruction": reconstruction})

    def impute_batch(self, x, mask):
        return self.decoder(self.encode(x, mask))

    def values_per_row(self, draws=1):
        height, width, channels = self.example_shape
        return height * width * (2 * channels + 2 * sum(self.widths)) * draws

    @classmethod
    def contract_example(cls):
        from keraszoo.testing import image_example

        x, mask = image_example()
        return {"x": x, "mask": mask, "params": {"latent": 4, "widths": [4, 4, 6], "discriminator_units": 8, "penalty_weight": 0.5, "seed": 2}, "fit": {"iterations": 20, "batch_size": 16}}

    def get_config(self):
        config = super().get_config()
        config.update({"latent": self.latent, "widths": self.widths, "discriminator_units": self.discriminator_units, "penalty_weight": self.penalty_weight})
        return config
