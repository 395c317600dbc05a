"""GAMIN: generative adversarial multiple imputation network for highly missing data (Yoon & Sull, CVPR 2020).

**Read this first: a reconstruction, not a reproduction.** No code for GAMIN is public, and the paper's
text was not available to us (searches of papers, code and issue corpora found only its citation; see
`../shared/notes/reference-implementations.md`, section 3). What is known of it is its abstract's three
ideas: an imputation architecture that "generates candidates of imputation", a "confidence prediction
method" for reliable multiple imputation, and training with "novel loss functions based on the
confidence", for missing rates of 80-95%. G2LGN (g2lgn.md Fig. 5) shows it only in a qualitative
figure. Everything below the three ideas is our design, none of it confirmed against the paper:

* **Candidates.** One generator G (GAIN's inputs: the example with U(0, `noise_scale`) noise at missing
  entries, and the mask) ends in `candidates` heads: K candidate values for every entry, [K, D].
* **Confidence.** A network C sees the example, its mask and the K candidates and gives, entry by entry,
  a softmax over the candidates: w_k, the confidence that candidate k is the closest to the truth.
* **Where the truth comes from.** At 80-95% missing the observed entries are the only supervision, so
  each batch hides `extra_mask_rate` of its observed entries from G and C (GAIN's `extra_mask_rate` in
  the zoo); the hidden entries' true values are the targets of the confidence losses.
* **Confidence-based losses.** C is trained by cross-entropy to pick, entry by entry, the candidate with
  the smallest error on the hidden entries. G is trained on the hidden entries with each candidate's
  squared error weighted by (w_k + 1/K) / 2 (C's confidence, fixed for G's step, half of it uniform so
  every candidate keeps learning): candidates specialise where C trusts them; plus `alpha` times the
  MSE of every candidate on the entries it sees (GAIN's observation loss), and an adversarial loss.
* **Adversary.** One discriminator D with GAIN's hint judges each candidate's completion entry by entry
  (non-saturating loss on missing entries, averaged over candidates): every candidate must look real,
  not only their average.
* **Imputation.** Single imputation (`impute`) is the confidence-weighted mean Σ_k w_k c_k with the
  noise at its mean (deterministic). Multiple imputation (`sample_imputations`) draws fresh noise and,
  entry by entry, one candidate with probability w_k: the draws spread where C is unsure.
* Tables only (images are flattened to rows, as G2LGN re-implemented GAIN and GAMIN "FC only"); Adam
  1e-3, GAIN's reference initialisation; sizes `hidden_units` (default two layers of D).
"""
import keras
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum
from keraszoo.models.gain.gain import bce_from_logits, hint_mask
from keraszoo.models.layers import gain_reference_init, mlp
from keraszoo.registry import register_model


@register_model("gamin")
class GAMIN(DeepImputer):
    """GAMIN-style imputer: K candidates, a confidence network over them, confidence-based losses.

    See the module docstring: reconstructed from the paper's abstract; each detail is ours.
    """

    generative = True
    example_kinds = ("table",)
    optimizer_networks = {"g_optimizer": "generator", "c_optimizer": "confidence", "d_optimizer": "discriminator"}
    default_learning_rates = {"g_optimizer": 1e-3, "c_optimizer": 1e-3, "d_optimizer": 1e-3}

    def __init__(
        self, candidates=4, alpha=100.0, hint_rate=0.9, extra_mask_rate=0.2, confidence_weight=1.0,
        hidden_units=None, noise_scale=0.01, seed=0, **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        if isinstance(candidates, bool) or int(candidates) != candidates or candidates < 1:
            raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
        if not alpha >= 0:
            raise ValueError(f"alpha must be non-negative, got {alpha}")
        if not 0.0 <= hint_rate <= 1.0:
            raise ValueError(f"hint_rate must be in [0, 1], got {hint_rate}")
        if not 0.0 < extra_mask_rate < 1.0:
            raise ValueError(
                f"extra_mask_rate must be in (0, 1): the hidden observed entries train the confidence, got {extra_mask_rate}"
            )
        if not confidence_weight >= 0:
            raise ValueError(f"confidence_weight must be non-negative, got {confidence_weight}")
        if not noise_scale >= 0:
            raise ValueError(f"noise_scale must be non-negative, got {noise_scale}")
        if hidden_units is not None and (len(hidden_units) == 0 or min(hidden_units) < 1):
            raise ValueError(f"hidden_units must be a non-empty list of positive widths, got {hidden_units}")
        self.candidates, self.alpha, self.hint_rate = int(candidates), float(alpha), float(hint_rate)
        self.extra_mask_rate, self.confidence_weight = float(extra_mask_rate), float(confidence_weight)
        self.hidden_units = None if hidden_units is None else [int(u) for u in hidden_units]
        self.noise_scale = float(noise_scale)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("d_loss", "g_loss", "confidence_loss", "mse_observed", "mse_hidden", "confidence_accuracy")
        }

    def build_networks(self, example_shape):
        (d,) = example_shape
        hidden = self.hidden_units or [d, d]
        k = self.candidates
        self.generator = mlp(2 * d, hidden, k * d, "sigmoid", seed=self.seed * 1000, name="generator", initializer=gain_reference_init)
        self.confidence = mlp((2 + k) * d, hidden, k * d, None, seed=self.seed * 1000 + 300, name="confidence", initializer=gain_reference_init)
        self.discriminator = mlp(2 * d, hidden, d, None, seed=self.seed * 1000 + 600, name="discriminator", initializer=gain_reference_init)

    def compile(self, g_optimizer=None, c_optimizer=None, d_optimizer=None, **kwargs):
        """`g_optimizer` trains the generator, `c_optimizer` the confidence network, `d_optimizer` D (Adam(1e-3) if None)."""
        super().compile(g_optimizer=g_optimizer, c_optimizer=c_optimizer, d_optimizer=d_optimizer, **kwargs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- the networks' outputs ------------------------------------------------------------------
    def candidates_and_confidence(self, x, mask, noise, training=False):
        """(candidates [B, K, D], confidence logits [B, K, D]) for data zeroed at missing entries."""
        d = tf.shape(x)[1]
        x_noisy = mask * x + (1.0 - mask) * noise
        values = tf.reshape(self.generator(tf.concat([x_noisy, mask], axis=1), training=training), [-1, self.candidates, d])
        flat_values = tf.reshape(values, [-1, self.candidates * d])
        logits = self.confidence(tf.concat([x_noisy, mask, tf.stop_gradient(flat_values)], axis=1), training=training)
        return values, tf.reshape(logits, [-1, self.candidates, d])

    def impute_batch(self, x, mask):
        values, logits = self.candidates_and_confidence(x, mask, tf.fill(tf.shape(x), 0.5 * self.noise_scale))
        return tf.reduce_sum(tf.nn.softmax(logits, axis=1) * values, axis=1)

    def sample_batch(self, x, mask, n):
        def draw(_):
            values, logits = self.candidates_and_confidence(x, mask, self.random_uniform(tf.shape(x), 0.0, self.noise_scale))
            # one candidate per entry, with probability w_k (Gumbel-max on the confidence logits)
            gumbel = -tf.math.log(-tf.math.log(self.random_uniform(tf.shape(logits), 1e-12, 1.0)))
            chosen = tf.one_hot(tf.argmax(logits + gumbel, axis=1), self.candidates, axis=1, dtype=values.dtype)
            return tf.reduce_sum(chosen * values, axis=1)

        return tf.map_fn(draw, tf.range(n), fn_output_signature=x.dtype)

    def values_per_row(self, draws=1):
        return self.imputation_cost * self.n_features * (self.candidates + 2) * draws

    # --- training -------------------------------------------------------------------------------
    def train_step(self, data):
        x, observed = data
        x = tf.where(observed > 0, x, tf.zeros_like(x))
        keep = tf.cast(self.random_uniform(tf.shape(observed)) >= self.extra_mask_rate, observed.dtype)
        mask, hidden = observed * keep, observed * (1.0 - keep)  # what G, C and D see / the confidence targets
        hint = hint_mask(mask, self.hint_rate, "code", self.random_uniform) * mask
        noise = self.random_uniform(tf.shape(x), 0.0, self.noise_scale)
        k = float(self.candidates)
        counts = tf.maximum(global_sum(tf.stack([tf.cast(tf.size(x), x.dtype), tf.reduce_sum(mask), tf.reduce_sum(hidden)])), 1.0)
        entries, mask_sum, hidden_sum = tf.unstack(counts)

        with tf.GradientTape(persistent=True) as tape:
            values, logits = self.candidates_and_confidence(x, mask, noise, training=True)
            completions = mask[:, None] * x[:, None] + (1.0 - mask[:, None]) * values  # [B, K, D]
            flat_completions = tf.reshape(completions, [-1, tf.shape(x)[1]])
            repeat = lambda t: tf.repeat(t, self.candidates, axis=0)  # noqa: E731  ([B, D] -> [B * K, D], rows grouped by example)

            # Discriminator on every candidate's completion (G gets no gradient from this loss).
            d_logits = self.discriminator(tf.concat([tf.stop_gradient(flat_completions), repeat(hint)], axis=1), training=True)
            d_loss = tf.reduce_sum(bce_from_logits(repeat(mask), d_logits)) / (entries * k)

            # Confidence: cross-entropy toward the candidate closest to the hidden truth, entry by entry.
            errors = tf.square(values - x[:, None])  # [B, K, D]
            best = tf.one_hot(tf.argmin(tf.stop_gradient(errors), axis=1), self.candidates, axis=1, dtype=x.dtype)
            cross_entropy = -tf.reduce_sum(best * tf.nn.log_softmax(logits, axis=1), axis=1)  # [B, D]
            confidence_loss = tf.reduce_sum(hidden * cross_entropy) / hidden_sum
            chose_best = tf.reduce_sum(best * tf.one_hot(tf.argmax(logits, axis=1), self.candidates, axis=1, dtype=x.dtype), axis=1)

            # Generator: adversarial (each candidate), observation loss (each candidate), confidence-weighted hidden loss.
            g_logits = self.discriminator(tf.concat([flat_completions, repeat(hint)], axis=1), training=True)
            g_adversarial = tf.reduce_sum((1.0 - repeat(mask)) * tf.math.softplus(-g_logits)) / (entries * k)
            mse_observed = tf.reduce_sum(mask[:, None] * errors) / (mask_sum * k)
            weights = 0.5 * (tf.stop_gradient(tf.nn.softmax(logits, axis=1)) + 1.0 / k)
            mse_hidden = tf.reduce_sum(hidden * tf.reduce_sum(weights * errors, axis=1)) / hidden_sum
            g_loss = g_adversarial + self.alpha * (mse_observed + self.confidence_weight * mse_hidden)
        self.apply_losses(
            tape,
            [(d_loss, self.discriminator, self.d_optimizer), (confidence_loss, self.confidence, self.c_optimizer), (g_loss, self.generator, self.g_optimizer)],
        )
        del tape
        return self.record(
            self.trackers,
            dict(
                d_loss=d_loss, g_loss=g_loss, confidence_loss=confidence_loss, mse_observed=mse_observed, mse_hidden=mse_hidden,
                confidence_accuracy=tf.reduce_sum(hidden * chose_best) / hidden_sum,
            ),
        )

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {
            "candidates": 3, "alpha": 10.0, "hint_rate": 0.8, "extra_mask_rate": 0.3, "confidence_weight": 0.5,
            "hidden_units": [6, 4], "noise_scale": 0.05, "seed": 3,
        }
        return example

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "candidates": self.candidates, "alpha": self.alpha, "hint_rate": self.hint_rate,
                "extra_mask_rate": self.extra_mask_rate, "confidence_weight": self.confidence_weight,
                "hidden_units": self.hidden_units, "noise_scale": self.noise_scale,
            }
        )
        return config
