"""DMFA: Deep Mixture of Factor Analyzers (Przewięźlikowski, Śmieja & Struski, ICONIP 2020), the density
model behind MisConv (misconv-supplement.md section 1.1; reference-implementations.md A1.1-A1.2).

A CNN reads an incomplete image (zeroed at missing pixels, concatenated with its mask, A1.1) and
predicts a Gaussian mixture over all its pixels: per component i, a weight p_i, a mean m_i, l factor
rows A_i [l, D] and a diagonal d_i, i.e. N(m_i, A_i^T A_i + diag(d_i)). Output constraints as the
authors' code (A1.1): m unconstrained, A = a_amplitude (sigmoid(.) - 1/2) in (-a/2, a/2), d = sigmoid(.)
+ 1e-6 in (0, 1), p = softmax.

Training on incomplete data (supplement: "we simulate incompleteness of the data by hiding the other
part x_u ... only the NLL of imputation of x_u \\ x_m is minimized"): each step hides a random square
(`hole_fraction` of the image, 14x14 on MNIST; re-drawn every step) from the network on top of the
really missing pixels, and minimises the negative log-likelihood of the hidden pixels that were
observed, under the predicted mixture (`likelihood.mixture_log_density`: Woodbury and the
determinant lemma, O(D l^2); a log-sum-exp over components, not the code's Σ p_i NLL_i bound). The
really missing pixels are never in the loss and never shown. `mse_warmup_steps` adds the squared
error of the mixture mean on the same pixels for the first steps (the supplement's "NLL with MSE for
the first 10 epochs", which it states for the fully convolutional variant; 0 = off, as its MNIST run).

Architectures (`architecture`):

* "linear_heads" (MNIST, section 1.1): 5x5 convolutions with 16, 32, 64 filters and a 3x3 one with 32,
  each ReLU ("same" padding), flattened, and one dense layer per output (A1.1). `filters` overrides
  the four widths.
* "fullconv" (32x32 images: SVHN, CIFAR-10): [conv32] x2, down, [conv64] x2, down, [conv128] x4, up,
  [conv64] x2, up, [conv32] x2 (conv = 5x5 convolution, ReLU, BatchNorm; down / up = stride-2
  convolution / transposed convolution), and convolutional heads (A1.1): A: 5x5 conv (16), BatchNorm,
  3x3 conv; m: 3x3 conv (16), BatchNorm, ReLU, 3x3 conv; d: 3x3 conv; p: a convolution over the whole
  image. `fullconv_filters` overrides the three widths (32, 64, 128). Height and width must divide by 4.

"l = 4 factor analyzers" in the supplement is l = 4 factors of one component (A1.1: the code fixes
one component); `n_components` > 1 is the general mixture. Defaults follow the supplement's MNIST run:
learning rate 4e-5 and batch 48 (the run's args record 24; we keep the paper's 48).

`impute` is the mixture's mean at the missing pixels (the conditional mean: the network is conditioned
on the observed pixels); `sample_imputations` draws from the mixture: a component by its weight, then
m + A^T z + sqrt(d) e with z, e standard normal.
"""
import math

import keras
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum, positive_int
from keraszoo.models.dmfa.likelihood import mixture_log_density
from keraszoo.registry import register_model

ARCHITECTURES = ("linear_heads", "fullconv")
DIAGONAL_FLOOR = 1e-6


@register_model("dmfa")
class DMFA(DeepImputer):
    """Deep Mixture of Factor Analyzers for incomplete images (see the module docstring)."""

    example_kinds = ("image",)
    generative = True
    optimizer_networks = {"dmfa_optimizer": "density_network"}
    default_learning_rates = {"dmfa_optimizer": 4e-5}
    default_batch_size = 48
    default_iterations = 25_000  # 20 epochs of MNIST's 60,000 images at batch 48
    default_steps_per_execution = 10

    def __init__(
        self,
        n_factors=4,
        n_components=1,
        architecture="linear_heads",
        filters=(16, 32, 64, 32),
        fullconv_filters=(32, 64, 128),
        a_amplitude=0.5,
        hole_fraction=0.25,
        mse_warmup_steps=0,
        seed=0,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.n_factors = positive_int(n_factors, "n_factors")
        self.n_components = positive_int(n_components, "n_components")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}")
        self.architecture = architecture
        if not isinstance(filters, (list, tuple)) or len(filters) != 4:
            raise ValueError(f"filters must be four positive integers (the linear-heads extractor), got {filters!r}")
        if not isinstance(fullconv_filters, (list, tuple)) or len(fullconv_filters) != 3:
            raise ValueError(f"fullconv_filters must be three positive integers, got {fullconv_filters!r}")
        self.filters = [positive_int(f, f"filters[{i}]") for i, f in enumerate(filters)]
        self.fullconv_filters = [positive_int(f, f"fullconv_filters[{i}]") for i, f in enumerate(fullconv_filters)]
        if isinstance(a_amplitude, bool) or not isinstance(a_amplitude, (int, float)) or not a_amplitude > 0:
            raise ValueError(f"a_amplitude must be a positive number, got {a_amplitude!r}")
        if isinstance(hole_fraction, bool) or not isinstance(hole_fraction, (int, float)) or not 0 < hole_fraction < 1:
            raise ValueError(f"hole_fraction must be in (0, 1), got {hole_fraction!r}")
        if isinstance(mse_warmup_steps, bool) or not isinstance(mse_warmup_steps, int) or mse_warmup_steps < 0:
            raise ValueError(f"mse_warmup_steps must be a non-negative integer, got {mse_warmup_steps!r}")
        self.a_amplitude, self.hole_fraction, self.mse_warmup_steps = float(a_amplitude), float(hole_fraction), int(mse_warmup_steps)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "nll", "nll_per_pixel", "mse")}

    # --- networks ---------------------------------------------------------------------------------
    def build_networks(self, example_shape):
        height, width, channels = example_shape
        self.hole_size = (max(1, round(height * math.sqrt(self.hole_fraction))), max(1, round(width * math.sqrt(self.hole_fraction))))
        k, l = self.n_components, self.n_factors
        inputs = keras.Input((height, width, 2 * channels))
        init = lambda i: keras.initializers.GlorotUniform(self.seed * 100 + i)  # noqa: E731
        if self.architecture == "linear_heads":
            h = inputs
            for i, (n, size) in enumerate(zip(self.filters, (5, 5, 5, 3))):
                h = keras.layers.Conv2D(n, size, padding="same", activation="relu", kernel_initializer=init(i), name=f"conv_{i}")(h)
            h = keras.layers.Flatten()(h)
            d = height * width * channels
            means = keras.layers.Dense(k * d, kernel_initializer=init(10), name="mean_head")(h)
            factors = keras.layers.Dense(k * l * d, kernel_initializer=init(11), name="factor_head")(h)
            diagonals = keras.layers.Dense(k * d, kernel_initializer=init(12), name="diagonal_head")(h)
            logits = keras.layers.Dense(k, kernel_initializer=init(13), name="weight_head")(h) if k > 1 else None
        else:
            if height % 4 or width % 4:
                raise ValueError(f"the fullconv DMFA halves the image twice: height and width must divide by 4, got {height}x{width}")
            small, medium, large = self.fullconv_filters
            counter = iter(range(1000))

            def block(h, n, size=5):
                h = keras.layers.Conv2D(n, size, padding="same", activation="relu", kernel_initializer=init(next(counter)))(h)
                return keras.layers.BatchNormalization()(h)

            h = inputs
            for n, repeat, step in ((small, 2, "down"), (medium, 2, "down"), (large, 4, "up"), (medium, 2, "up"), (small, 2, None)):
                for _ in range(repeat):
                    h = block(h, n)
                if step == "down":
                    h = keras.layers.Conv2D(n, 5, strides=2, padding="same", activation="relu", kernel_initializer=init(next(counter)))(h)
                elif step == "up":
                    h = keras.layers.Conv2DTranspose(n, 5, strides=2, padding="same", activation="relu", kernel_initializer=init(next(counter)))(h)
            head_width = 16
            a = block(h, head_width)
            factors = keras.layers.Conv2D(k * l * channels, 3, padding="same", kernel_initializer=init(500), name="factor_head")(a)
            m = keras.layers.ReLU()(block(h, head_width, 3))
            means = keras.layers.Conv2D(k * channels, 3, padding="same", kernel_initializer=init(501), name="mean_head")(m)
            diagonals = keras.layers.Conv2D(k * channels, 3, padding="same", kernel_initializer=init(502), name="diagonal_head")(h)
            logits = keras.layers.Flatten()(keras.layers.Conv2D(k, (height, width), padding="valid", kernel_initializer=init(503), name="weight_head")(h)) if k > 1 else None
            # per-pixel channels [H, W, K * l * C] -> the flat layout of the dense heads: [K * l * D] in (k, l, h, w, c) order
            means = keras.layers.Reshape((height, width, k, channels))(means)
            means = keras.layers.Flatten()(keras.layers.Permute((3, 1, 2, 4))(means))
            factors = keras.layers.Reshape((height * width, k * l, channels))(factors)
            factors = keras.layers.Flatten()(keras.layers.Permute((2, 1, 3))(factors))
            diagonals = keras.layers.Reshape((height, width, k, channels))(diagonals)
            diagonals = keras.layers.Flatten()(keras.layers.Permute((3, 1, 2, 4))(diagonals))
        outputs = [means, factors, diagonals] + ([logits] if k > 1 else [])  # one component needs no weight head
        self.density_network = keras.Model(inputs, outputs, name="density_network")

    def mixture(self, x, mask, training=False):
        """The mixture predicted for images `x` (zeroed at missing pixels) and `mask`: means [B, K, D],
        factors [B, K, l, D], diagonals [B, K, D] (flat pixels, (h, w, c) order) and log-weights [B, K]."""
        outputs = self.density_network(tf.concat([x * mask, mask], axis=-1), training=training)
        means, factors, diagonals = outputs[:3]
        k, l, d = self.n_components, self.n_factors, self.n_features
        logits = outputs[3] if k > 1 else tf.zeros([tf.shape(means)[0], 1])
        means = tf.reshape(means, [-1, k, d])
        factors = self.a_amplitude * (tf.sigmoid(tf.reshape(factors, [-1, k, l, d])) - 0.5)
        diagonals = tf.sigmoid(tf.reshape(diagonals, [-1, k, d])) + DIAGONAL_FLOOR
        return means, factors, diagonals, tf.nn.log_softmax(logits, axis=-1)

    def random_holes(self, shape):
        """1 inside a random `hole_size` block per image (all channels), else 0; shape [B, H, W, C]."""
        batch, height, width = shape[0], shape[1], shape[2]
        bh, bw = self.hole_size
        top = tf.cast(tf.floor(self.random_uniform([batch]) * tf.cast(height - bh + 1, tf.float32)), tf.int32)
        left = tf.cast(tf.floor(self.random_uniform([batch]) * tf.cast(width - bw + 1, tf.float32)), tf.int32)
        rows = tf.range(height)[None, :, None]
        cols = tf.range(width)[None, None, :]
        inside = (rows >= top[:, None, None]) & (rows < top[:, None, None] + bh) & (cols >= left[:, None, None]) & (cols < left[:, None, None] + bw)
        return tf.cast(inside, tf.float32)[..., None] * tf.ones([1, 1, 1, shape[3]])

    # --- training -------------------------------------------------------------------------------------
    def losses_on(self, x, mask, hole, training=False):
        """(NLL sum over images, MSE sum over pixels, loss pixels) of the observed pixels inside `hole`,
        which the network does not see."""
        shown = mask * (1.0 - hole)
        target = mask * hole
        means, factors, diagonals, log_weights = self.mixture(x, shown, training=training)
        flat_x = tf.reshape(x, [-1, self.n_features])
        flat_target = tf.reshape(target, [-1, self.n_features])
        log_density = mixture_log_density(flat_x, means, factors, diagonals, flat_target, log_weights)
        mixture_mean = tf.einsum("bk,bkd->bd", tf.exp(log_weights), means)
        squared = tf.reduce_sum(flat_target * tf.square(mixture_mean - flat_x))
        return -tf.reduce_sum(log_density), squared, tf.reduce_sum(flat_target)

    def training_loss(self, x, mask, step, training=True):
        """{loss, nll, nll_per_pixel, mse} of one training batch at optimizer step `step`: a fresh hole per
        image, the NLL per image (global batch) plus, during the warm-up, the hole's MSE per pixel."""
        hole = self.random_holes(tf.shape(x))
        images = tf.cast(global_sum(tf.shape(x)[0]), tf.float32)
        nll_sum, squared_sum, pixels = self.losses_on(x, mask, hole, training=training)
        pixels_total = tf.maximum(global_sum(pixels), 1.0)
        nll, mse = nll_sum / images, squared_sum / pixels_total
        warming = tf.cast(step < self.mse_warmup_steps, tf.float32)
        return {"loss": nll + warming * mse, "nll": nll, "nll_per_pixel": nll_sum / pixels_total, "mse": mse}

    def train_step(self, data):
        x, mask = data
        x = tf.where(mask > 0, x, tf.zeros_like(x))
        weights = self.density_network.trainable_variables
        with tf.GradientTape() as tape:
            values = self.training_loss(x, mask, self.dmfa_optimizer.iterations)
        self.dmfa_optimizer.apply_gradients(zip(tape.gradient(values["loss"], weights), weights))
        return self.record(self.trackers, values)

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- imputation -----------------------------------------------------------------------------------
    def impute_batch(self, x, mask):
        means, _, _, log_weights = self.mixture(x, mask)
        return tf.reshape(tf.einsum("bk,bkd->bd", tf.exp(log_weights), means), tf.shape(x))

    def sample_batch(self, x, mask, n):
        means, factors, diagonals, log_weights = self.mixture(x, mask)
        batch = tf.shape(x)[0]
        # a component per draw and image, by inverse transform of its weights
        u = self.random_uniform([n, batch, 1])
        component = tf.minimum(tf.reduce_sum(tf.cast(u > tf.cumsum(tf.exp(log_weights), axis=-1)[None], tf.int32), axis=-1), self.n_components - 1)
        index = tf.transpose(component)  # [B, n]
        chosen_means = tf.transpose(tf.gather(means, index, axis=1, batch_dims=1), [1, 0, 2])  # [n, B, D]
        chosen_factors = tf.transpose(tf.gather(factors, index, axis=1, batch_dims=1), [1, 0, 2, 3])  # [n, B, l, D]
        chosen_diagonals = tf.transpose(tf.gather(diagonals, index, axis=1, batch_dims=1), [1, 0, 2])
        z = self.random_normal([n, batch, self.n_factors])
        e = self.random_normal([n, batch, self.n_features])
        draws = chosen_means + tf.einsum("nbl,nbld->nbd", z, chosen_factors) + tf.sqrt(chosen_diagonals) * e
        return tf.reshape(draws, tf.concat([[n], tf.shape(x)], 0))

    def values_per_row(self, draws=1):
        height, width, channels = self.example_shape
        maps = height * width * (2 * channels + (sum(self.filters) if self.architecture == "linear_heads" else 2 * sum(self.fullconv_filters)))
        heads = self.n_components * (self.n_factors + 3) * self.n_features
        return maps + heads * (1 + draws)

    @classmethod
    def contract_example(cls):
        from keraszoo.testing import image_example

        x, mask = image_example()
        params = {"n_factors": 2, "n_components": 2, "filters": [4, 4, 4, 4], "mse_warmup_steps": 5, "a_amplitude": 1.0, "seed": 2}
        return {"x": x, "mask": mask, "params": params, "fit": {"iterations": 20, "batch_size": 16}}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "n_factors": self.n_factors,
                "n_components": self.n_components,
                "architecture": self.architecture,
                "filters": self.filters,
                "fullconv_filters": self.fullconv_filters,
                "a_amplitude": self.a_amplitude,
                "hole_fraction": self.hole_fraction,
                "mse_warmup_steps": self.mse_warmup_steps,
            }
        )
        return config
