"""MisConv: the first convolution of a CNN, taking an incomplete image and a Gaussian density of its
missing pixels, and returning the expected ReLU activation (misconv-supplement.md section 3; the
closed form of Smieja et al., NeurIPS 2018, as recorded in reference-implementations.md A1.3).

The missing pixels x_M of an image are modelled (by DMFA) as a mixture of Gaussians: component i has
weight p_i, mean m_i, and covariance A_i^T A_i + diag(d_i) with l factor columns a_i1..a_il. The
pre-activation of one output pixel, w * x + b, is then Gaussian per component with

    mean      mu_i      = W * (x on observed pixels, m_i on missing ones) + b
    variance  sigma_i^2 = (W ⊙ W) * (d_i on missing pixels, 0 on observed)
                          + sum_k (W * (a_ik on missing pixels, 0 on observed))^2

and the expected ReLU of a Gaussian is E[ReLU] = mu Φ(mu / sigma) + sigma φ(mu / sigma); the layer
returns sum_i p_i E_i[ReLU]. Where the receptive field holds no missing pixel, sigma_i^2 is exactly 0
(every term is a convolution of zeros) and the output is ReLU(W * x + b) exactly. This is the
textbook formula, not the departures of the authors' intermediate code (½σφ, a squared bias in the
variance, a bias on the factor convolutions, the centre-pixel rule): see the notes, A1.3.

Per image and component it convolves the filled image, the l factor columns (kernel W) and the
diagonal (kernel W ⊙ W): the "3 + l" convolutions the supplement counts (x and m share one here).
"""
import math

import keras
import tensorflow as tf

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def expected_relu(mean, variance):
    """E[max(0, z)] for z ~ N(mean, variance), elementwise; exactly max(0, mean) where variance is 0.

    The square root and the division are taken on a safe variance (1 where it is 0) so that neither the
    value nor the gradient is NaN where the closed form is replaced by the ReLU. The formula runs in
    float64: graph rewrites of the float32 expression (which differ between traces with and without a
    static batch size) moved results by 1 ulp, so a saved and reloaded classifier disagreed with itself."""
    dtype = mean.dtype
    mean, variance = tf.cast(mean, tf.float64), tf.cast(variance, tf.float64)
    random = variance > 0.0
    sigma = tf.sqrt(tf.where(random, variance, tf.ones_like(variance)))
    z = mean / sigma
    closed_form = mean * 0.5 * (1.0 + tf.math.erf(z * _SQRT_HALF)) + sigma * _INV_SQRT_2PI * tf.exp(-0.5 * tf.square(z))
    return tf.cast(tf.where(random, closed_form, tf.nn.relu(mean)), dtype)


class _Conv2DOnIncompleteImages(keras.layers.Layer):
    """What MisConv and the partial convolution share: Conv2D's parameters, a kernel and a bias."""

    def __init__(self, filters=32, kernel_size=3, strides=1, padding="same", kernel_initializer="he_normal", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = (int(kernel_size),) * 2 if isinstance(kernel_size, int) else tuple(int(k) for k in kernel_size)
        self.strides = (int(strides),) * 2 if isinstance(strides, int) else tuple(int(s) for s in strides)
        if padding.lower() not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.padding = padding.upper()
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if seed is not None and hasattr(self.kernel_initializer, "seed"):
            self.kernel_initializer.seed = seed
        self.seed = seed

    def _make_weights(self, channels):
        self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, channels, self.filters), initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def _conv(self, images, kernel):
        return tf.nn.conv2d(images, kernel, strides=(1, *self.strides, 1), padding=self.padding)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding.lower(),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="keraszoo")
class MisConv(_Conv2DOnIncompleteImages):
    """A 2-D convolution of incomplete images whose output is the expected ReLU over the missing pixels'
    Gaussian mixture. Replaces the first convolution (and its ReLU) of any Keras CNN.

    Call with ``(x, observed, means, factors, diagonals, weights)``:

    * x [B, H, W, C] (any value at missing pixels, NaN included: it is never read there), observed
      [B, H, W, C] (1 where the pixel is observed, 0 where missing);
    * means [B, K, H, W, C] and diagonals [B, K, H, W, C] (d > 0) for K mixture components;
    * factors [B, K, l, H, W, C]: the l factor columns of each component, as images;
    * weights [B, K] (the components' probabilities, summing to 1), or None for equal weights.

    filters, kernel_size, strides, padding as `keras.layers.Conv2D` (defaults: the authors' 32 filters,
    3x3, "same"); returns [B, H', W', filters].
    """


    def build(self, x_shape, observed_shape=None, means_shape=None, factors_shape=None, diagonals_shape=None, weights_shape=None):
        self._make_weights(int(x_shape[-1]))
        self.built = True

    def call(self, x, observed, means, factors, diagonals, weights=None):
        x = tf.convert_to_tensor(x)
        observed = tf.cast(observed, x.dtype)
        missing = 1.0 - observed
        shape = tf.shape(means)
        batch, components = shape[0], shape[1]
        height, width, channels = shape[2], shape[3], shape[4]
        n_factors = tf.shape(factors)[2]
        # the filled image of each component and its missing-pixel factor columns share the kernel W
        filled = tf.where(observed[:, None] > 0, x[:, None], means)  # [B, K, H, W, C]
        columns = factors * missing[:, None, None]  # [B, K, l, H, W, C]
        stacked = tf.concat(
            [tf.reshape(filled, [-1, height, width, channels]), tf.reshape(columns, [-1, height, width, channels])], axis=0
        )
        convolved = self._conv(stacked, self.kernel)
        n_filled = batch * components
        out_shape = tf.shape(convolved)[1:]
        mean = tf.reshape(convolved[:n_filled], tf.concat([[batch, components], out_shape], 0)) + self.bias
        factor_part = tf.reshape(convolved[n_filled:], tf.concat([[batch, components, n_factors], out_shape], 0))
        diagonal_part = self._conv(tf.reshape(diagonals * missing[:, None], [-1, height, width, channels]), tf.square(self.kernel))
        variance = tf.reshape(diagonal_part, tf.concat([[batch, components], out_shape], 0)) + tf.reduce_sum(tf.square(factor_part), axis=2)
        expected = expected_relu(mean, variance)  # [B, K, H', W', filters]
        if weights is None:  # equal weights (the one component of the authors' DMFA)
            return tf.reduce_mean(expected, axis=1)
        return tf.einsum("bk,bkhwf->bhwf", tf.cast(weights, expected.dtype), expected)



@keras.saving.register_keras_serializable(package="keraszoo")
class PartialConv2D(_Conv2DOnIncompleteImages):
    """Partial convolution (Liu et al., ECCV 2018, multi-channel masks), the "PC" baseline's first layer:
    W^T (x ⊙ m) · sum(1) / sum(m) + b over each window, 0 where the window has no observed value.

    Call with ``(x, observed)`` ([B, H, W, C] each, 1 = observed); returns [B, H', W', filters]. Only the
    output is returned: as a first layer, the updated mask of the paper is not needed.
    """


    def build(self, x_shape, observed_shape=None):
        self.channels = int(x_shape[-1])
        self._make_weights(self.channels)
        self.built = True

    def call(self, x, observed):
        observed = tf.cast(observed, x.dtype)
        convolved = self._conv(tf.where(observed > 0, x, tf.zeros_like(x)), self.kernel)
        counts = self._conv(observed, tf.ones((*self.kernel_size, self.channels, 1), x.dtype))
        window = float(self.kernel_size[0] * self.kernel_size[1] * self.channels)
        scaled = convolved * (window / tf.maximum(counts, 1.0)) + self.bias
        return tf.where(counts > 0, scaled, tf.zeros_like(scaled))

