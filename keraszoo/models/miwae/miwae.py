"""MIWAE: deep latent variable models and multiple imputation of incomplete data (Mattei & Frellsen; miwae.md).

**Model** (section 1.1, eq. 1). z ~ p(z) = N(0, I) of dimension `latent_dim`; the decoder f_θ(z) gives
the parameters of the observation model p_θ(x | z) = Φ(x | f_θ(z)), one independent factor per entry, so
"all its marginal and conditional distributions are available in closed form" and log p_θ(x° | z) is the
sum over observed entries only. `observation`: "gaussian" (loc, scale = softplus + 1e-3), "studentt"
(the authors' notebooks: loc, scale = softplus + 1e-3, df = softplus + 3), "bernoulli" (logits; binary
images). Densities are `tfp.distributions`.

**Encoder** (section 1.1). q_γ(z | x°) = Ψ(z | g_γ(ι(x°))), "the family of Gaussian distributions with
diagonal covariances" (section 1.2): the encoder outputs the mean and a raw scale, scale = softplus +
1e-4 (the notebooks' softplus; the floor keeps log q finite). ι, "an imputation function chosen
beforehand": `imputation="zero"` (the paper's suggestion, section 1.2) or "learned" (default; the
notebooks' zero plus a learned per-feature constant, trained on the bound — the paper's "parametrised
imputation function that could be learned by maximising L_K").

**Training** (eq. 3): the missIWAE bound L_K = E[log (1/K) Σ_k p_θ(x°|z_k) p(z_k) / q_γ(z_k|x°)] with
`samples` = K draws per row (K = 1 is missVAE), reparametrised, maximised by Adam in `train_step` (the
loss is −L_K averaged over the global batch). Logged: `bound` (L_K per row, nats), `log_px_observed`
(the mean of log p_θ(x° | z) over the K draws, a reconstruction term) and `samples` (K).

**Single imputation** (section 2, eq. 5): self-normalised importance sampling with proposal
p_θ(x^m | x°, z) q_γ(z | x°), L = `imputation_samples` draws: x̂^m = Σ_l w_l E[x^m | z_l], w_l ∝
p_θ(x°|z_l) p(z_l) / q_γ(z_l|x°). E[x^m | z] is the observation model's mean (for a Bernoulli, the
probability of a 1: the estimate of E[x^m | x°], not a thresholded pixel). The L draws are taken
`importance_chunk` at a time with a running log-sum-exp, so memory is bounded by the chunk, not by L
(L = 10,000 runs in the memory of one chunk). The draws use a fixed seed (the model's `seed`), so the
same call returns the same imputation; a row's draws depend on its place in the batch, so a row imputed
in another batch moves by the Monte-Carlo error (small at L = 1,000).

**Multiple imputation** (section 2): sampling importance resampling — for each of the n imputations,
one of the L draws z_l is chosen with probability w_l, then x^m ~ p_θ(x^m | z_l). The choice streams
over the chunks with the Gumbel-max trick (argmax_l log w_l + G_l, G_l ~ Gumbel, keeping each draw's
best z so far), which chooses l with probability exactly w_l without keeping all L draws.

**Log-likelihood** (`log_likelihood`): log p̂(x°) = log (1/K) Σ_k w_k with large K, eq. 3's estimate of
eq. 2 for one row (section 1.2: L_K → ℓ as K grows), in the model's (min-max scaled) units.

**Networks**: see `keraszoo.models.miwae.networks` (fully connected for tables, convolutional for
images). `activation` is ReLU (the notebooks; the paper used tanh, per the notebooks' remark).
"""
import math

import keras
import numpy as np
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum, positive_int
from keraszoo.models.miwae import networks
from keraszoo.registry import register_model


def distributions():
    """`tfp.distributions`, imported on first use: TFP adds about a second to every process that imports
    the zoo (its CLI, the server), most of which never build a MIWAE."""
    import tensorflow_probability as tfp

    return tfp.distributions


#: raw parameters per entry of each observation model.
OBSERVATION_PARAMS = {"gaussian": 2, "studentt": 3, "bernoulli": 1}
SCALE_FLOOR = 1e-3  # the notebooks' softplus(.) + 0.001 of the observation scale
DF_FLOOR = 3.0  # the notebooks' softplus(.) + 3 of the Student-t degrees of freedom
POSTERIOR_SCALE_FLOOR = 1e-4


def observation_log_prob(observed, x):
    """log p_θ(x | z) of each entry. For a Student-t, the density written out with `lgamma`:
    TFP's `StudentT.log_prob` goes through a numerically careful `lbeta`, which made it 2.9x slower on
    [100, 569, 30] tensors and about 70% of the time of L = 10,000 importance sampling (the same value to
    float32 rounding for the degrees of freedom above 3 that `DF_FLOOR` guarantees)."""
    if not isinstance(observed, distributions().StudentT):
        return observed.log_prob(x)
    df, scale = observed.df, observed.scale
    y = (x - observed.loc) / scale
    return (
        tf.math.lgamma(0.5 * (df + 1.0)) - tf.math.lgamma(0.5 * df) - 0.5 * tf.math.log(df * math.pi)
        - tf.math.log(scale) - 0.5 * (df + 1.0) * tf.math.log1p(tf.square(y) / df)
    )


def snis_update(log_total, weighted_sum, log_w, values):
    """One chunk of self-normalised importance sampling with a running log-sum-exp.

    `log_total` [B] is log Σ r over the draws so far (−inf before the first), `weighted_sum` [B, ...]
    is Σ r·value / Σ r over them; `log_w` [c, B] and `values` [c, B, ...] are the chunk's. Returns the
    pair updated with the chunk, so that after every chunk `weighted_sum` is eq. 5's Σ_l w_l value_l.
    """
    new_total = tf.math.reduce_logsumexp(tf.concat([log_total[None], log_w], axis=0), axis=0)
    old_share, chunk_weights = tf.exp(log_total - new_total), tf.exp(log_w - new_total[None])
    for _ in range(len(values.shape) - 2):  # broadcast over the example's axes
        old_share, chunk_weights = old_share[..., None], chunk_weights[..., None]
    return new_total, old_share * weighted_sum + tf.reduce_sum(chunk_weights * values, axis=0)


def resample_update(best_score, best_value, log_w, values, gumbel):
    """One chunk of streaming sampling-importance-resampling (Gumbel-max).

    `best_score` [n, B] and `best_value` [n, B, k] are each of the n draws' best log w + G so far and the
    value (a latent z) that scored it; `log_w` [c, B] and `values` [c, B, k] are the chunk's, `gumbel`
    [n, c, B] standard Gumbel noise. Over all chunks, draw j of row b ends on value l with probability
    w_l = r_l / Σ r (the argmax of log r_l + G_l is a draw from the softmax of log r).
    """
    scores = log_w[None] + gumbel  # [n, c, B]
    chunk_best = tf.reduce_max(scores, axis=1)  # [n, B]
    index = tf.argmax(scores, axis=1, output_type=tf.int32)  # [n, B]
    by_row = tf.transpose(values, [1, 0, 2])  # [B, c, k]
    chosen = tf.gather(by_row, tf.transpose(index), batch_dims=1)  # [B, n, k]
    chosen = tf.transpose(chosen, [1, 0, 2])
    better = chunk_best > best_score
    return tf.where(better, chunk_best, best_score), tf.where(better[..., None], chosen, best_value)


@register_model("miwae")
class MIWAE(DeepImputer):
    """MIWAE imputer: a VAE-style deep latent variable model trained on the missIWAE bound (eq. 3), imputing
    by importance sampling (eq. 5) and sampling importance resampling. See the module docstring."""

    generative = True
    density = True
    example_kinds = ("table", "image")
    default_learning_rates = {"bound_optimizer": 1e-3}

    def __init__(
        self,
        latent_dim=10,
        encoder_units=(128, 128, 128),
        decoder_units=(128, 128),
        observation="studentt",
        imputation="learned",
        samples=20,
        imputation_samples=1000,
        importance_chunk=100,
        activation="relu",
        filters=16,
        dense_units=256,
        seed=0,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        for name, value in (("latent_dim", latent_dim), ("samples", samples), ("imputation_samples", imputation_samples),
                            ("importance_chunk", importance_chunk), ("filters", filters), ("dense_units", dense_units)):
            positive_int(value, name)
        for name, units in (("encoder_units", encoder_units), ("decoder_units", decoder_units)):
            if not isinstance(units, (list, tuple)) or len(units) == 0 or any(
                isinstance(u, bool) or not isinstance(u, (int, np.integer, float)) or int(u) != u or u < 1 for u in units
            ):
                raise ValueError(f"{name} must be a non-empty list of positive widths, got {units!r}")
        if observation not in OBSERVATION_PARAMS:
            raise ValueError(f"observation must be one of {sorted(OBSERVATION_PARAMS)}, got {observation!r}")
        if imputation not in ("zero", "learned"):
            raise ValueError(f"imputation must be 'zero' (the paper) or 'learned' (the notebooks), got {imputation!r}")
        if activation not in ("relu", "tanh"):
            raise ValueError(f"activation must be 'relu' (the notebooks) or 'tanh' (the paper), got {activation!r}")
        self.latent_dim = int(latent_dim)
        self.encoder_units = [int(u) for u in encoder_units]
        self.decoder_units = [int(u) for u in decoder_units]
        self.observation = observation
        self.imputation = imputation
        self.samples = int(samples)
        self.imputation_samples = int(imputation_samples)
        self.importance_chunk = int(importance_chunk)
        self.activation = activation
        self.filters = int(filters)
        self.dense_units = int(dense_units)
        self.bound_tracker = keras.metrics.Mean(name="bound")
        self.log_px_tracker = keras.metrics.Mean(name="log_px_observed")

    @property
    def optimizer_networks(self):
        """{optimizer: networks}: one Adam (`bound_optimizer`) on the bound for the encoder, the decoder and a learned ι."""
        return {"bound_optimizer": ("encoder", "decoder") + (("imputer",) if self.imputation == "learned" else ())}

    @property
    def metrics(self):
        return [self.bound_tracker, self.log_px_tracker]

    # --- networks -------------------------------------------------------------------------------
    def build_networks(self, example_shape):
        n_params = OBSERVATION_PARAMS[self.observation]
        seed = self.seed * 1000
        if len(example_shape) == 3:
            self.encoder = networks.image_encoder(example_shape, self.filters, self.dense_units, self.latent_dim, self.activation, seed)
            self.decoder = networks.image_decoder(self.latent_dim, example_shape, self.filters, self.dense_units, n_params, self.activation, seed + 100)
        else:
            self.encoder = networks.table_encoder(self.n_features, self.encoder_units, self.latent_dim, self.activation, seed)
            self.decoder = networks.table_decoder(self.latent_dim, self.decoder_units, self.n_features, n_params, self.activation, seed + 100)
        if self.imputation == "learned":
            self.imputer = networks.LearnedImputation(example_shape, name="imputer")

    def compile(self, bound_optimizer=None, **kwargs):
        """`bound_optimizer` trains the encoder, the decoder and a learned ι on the bound (Adam(1e-3) if None)."""
        super().compile(bound_optimizer=bound_optimizer, **kwargs)

    # --- the model's distributions ----------------------------------------------------------------
    def posterior(self, x, mask, training=False):
        """(mean, scale) of q_γ(z | x°) = N(g_γ(ι(x°))), each [batch, latent_dim]."""
        filled = self.imputer(x, mask) if self.imputation == "learned" else mask * x
        out = self.encoder(filled, training=training)
        mean, raw_scale = tf.split(out, 2, axis=-1)
        return mean, tf.math.softplus(raw_scale) + POSTERIOR_SCALE_FLOOR

    def observation_model(self, z, training=False):
        """p_θ(x | z) for z [..., latent_dim]: a `tfd` distribution with batch shape [..., *example_shape]."""
        lead = tf.shape(z)[:-1]
        params = self.decoder(tf.reshape(z, [-1, self.latent_dim]), training=training)
        params = tf.reshape(params, tf.concat([lead, self.example_shape, [OBSERVATION_PARAMS[self.observation]]], axis=0))
        tfd = distributions()
        if self.observation == "bernoulli":
            return tfd.Bernoulli(logits=params[..., 0], dtype=z.dtype)
        loc, scale = params[..., 0], tf.math.softplus(params[..., 1]) + SCALE_FLOOR
        if self.observation == "gaussian":
            return tfd.Normal(loc, scale)
        return tfd.StudentT(df=tf.math.softplus(params[..., 2]) + DF_FLOOR, loc=loc, scale=scale)

    def _example_axes(self, rank_before):
        return list(range(rank_before, rank_before + len(self.example_shape)))

    def log_weights(self, x, mask, z, mean, scale, training=False):
        """log r = log p_θ(x°|z) + log p(z) − log q_γ(z|x°) for z [c, batch, d]; returns (log r [c, batch],
        log p_θ(x°|z) [c, batch], p_θ(x | z))."""
        observed = self.observation_model(z, training=training)
        log_px = tf.reduce_sum(mask[None] * observation_log_prob(observed, x[None]), axis=self._example_axes(2))
        tfd = distributions()
        log_prior = tf.reduce_sum(tfd.Normal(0.0, 1.0).log_prob(z), axis=-1)
        log_q = tf.reduce_sum(tfd.Normal(mean[None], scale[None]).log_prob(z), axis=-1)
        return log_px + log_prior - log_q, log_px, observed

    def draw_latents(self, mean, scale, count, noise=None):
        """`count` reparametrised draws z = mean + scale · ε, [count, batch, d] (ε from the model's seed
        generator, or the given `noise`)."""
        if noise is None:
            noise = self.random_normal(tf.concat([[count], tf.shape(mean)], axis=0))
        return mean[None] + scale[None] * noise

    # --- training -------------------------------------------------------------------------------
    def train_step(self, data):
        x, mask = data
        x = tf.where(mask > 0, x, tf.zeros_like(x))
        batch = global_sum(tf.cast(tf.shape(x)[0], x.dtype))
        with tf.GradientTape() as tape:
            mean, scale = self.posterior(x, mask, training=True)
            z = self.draw_latents(mean, scale, self.samples)
            log_w, log_px, _ = self.log_weights(x, mask, z, mean, scale, training=True)
            bound = tf.math.reduce_logsumexp(log_w, axis=0) - math.log(self.samples)  # eq. 3, one row each
            loss = -tf.reduce_sum(bound) / batch
        variables = self.optimizers_and_variables()[0][2]
        self.bound_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        logs = self.record(
            {"bound": self.bound_tracker, "log_px_observed": self.log_px_tracker},
            {"bound": tf.reduce_sum(bound) / batch, "log_px_observed": tf.reduce_sum(tf.reduce_mean(log_px, axis=0)) / batch},
        )
        return {**logs, "samples": tf.constant(float(self.samples))}

    # --- imputation -----------------------------------------------------------------------------
    def _chunks(self, total):
        chunk = min(self.importance_chunk, total)
        return chunk, -(-total // chunk)

    def impute_batch(self, x, mask):
        """Eq. 5: Σ_l w_l E[x | z_l] over L = `imputation_samples` draws, `importance_chunk` at a time."""
        mean, scale = self.posterior(x, mask)
        chunk, n_chunks = self._chunks(self.imputation_samples)
        batch = tf.shape(x)[0]

        def body(i, log_total, weighted):
            size = tf.minimum(chunk, self.imputation_samples - i * chunk)
            # fixed-seed draws: the same call imputes the same values (chunk i, from the model's seed)
            seed = tf.stack([self.seed, i])
            noise = tf.random.stateless_normal(tf.concat([[size], tf.shape(mean)], 0), seed=seed, dtype=mean.dtype)
            log_w, values = self.weighted_values(x, mask, self.draw_latents(mean, scale, size, noise), mean, scale, seed)
            return (i + 1, *snis_update(log_total, weighted, log_w, values))

        start = (tf.constant(0), tf.fill([batch], tf.constant(-np.inf, x.dtype)), tf.zeros_like(x))
        _, _, imputed = tf.while_loop(lambda i, *_: i < n_chunks, body, start)
        return imputed

    def weighted_values(self, x, mask, z, mean, scale, seed):
        """(log r [c, batch], the value eq. 5 averages [c, batch, ...]) for latent draws z [c, batch, d]:
        here E[x | z]. `seed` (int32 [2]) is for any further draw, stateless so that imputation repeats."""
        log_w, _, observed = self.log_weights(x, mask, z, mean, scale)
        return log_w, observed.mean()

    def sample_batch(self, x, mask, n):
        """Sampling importance resampling: n draws of z among L weighted ones, then x ~ p_θ(x | z), [n, batch, ...]."""
        mean, scale = self.posterior(x, mask)
        chunk, n_chunks = self._chunks(self.imputation_samples)
        batch = tf.shape(x)[0]

        def body(i, best_score, best):
            size = tf.minimum(chunk, self.imputation_samples - i * chunk)
            log_w, kept = self.resampled_values(x, mask, self.draw_latents(mean, scale, size), mean, scale)
            uniform = self.random_uniform(tf.stack([n, size, batch]), 1e-20, 1.0)
            return (i + 1, *resample_update(best_score, best, log_w, kept, -tf.math.log(-tf.math.log(uniform))))

        start = (tf.constant(0), tf.fill(tf.stack([n, batch]), tf.constant(-np.inf, x.dtype)), tf.zeros(tf.stack([n, batch, self.resampled_width]), x.dtype))
        _, _, chosen = tf.while_loop(lambda i, *_: i < n_chunks, body, start)
        return self.resampled_draws(chosen)

    # what SIR keeps of each draw: here the latent z (then x ~ p_θ(x | z) for the chosen ones)
    @property
    def resampled_width(self):
        return self.latent_dim

    def resampled_values(self, x, mask, z, mean, scale):
        """(log r [c, batch], what SIR keeps of each draw [c, batch, `resampled_width`]) for z [c, batch, d]."""
        log_w, _, _ = self.log_weights(x, mask, z, mean, scale)
        return log_w, z

    def resampled_draws(self, chosen):
        """The imputations [n, batch, ...] from the kept values of the chosen draws [n, batch, `resampled_width`]."""
        return self.sample_observation(self.observation_model(chosen))

    def sample_observation(self, observed, seed=None):
        """One draw of x from `observed` (a `tfd` distribution), reparametrised for the Gaussian and the
        Student-t: from the model's seed generator, or, given `seed` (int32 [2]), stateless, so that the
        same call draws the same values."""
        shape = tf.shape(observed.mean())
        if seed is None:
            uniform, normal = self.random_uniform, self.random_normal
            gamma_seed = tf.cast(self.random_uniform([2], 0.0, 2.0**31 - 1.0), tf.int32)
        else:
            seeds = tf.random.experimental.stateless_split(seed, 3)
            uniform = lambda s: tf.random.stateless_uniform(s, seeds[0], dtype=observed.dtype)
            normal = lambda s: tf.random.stateless_normal(s, seeds[1], dtype=observed.dtype)
            gamma_seed = seeds[2]
        if self.observation == "bernoulli":
            return tf.cast(uniform(shape) < observed.probs_parameter(), observed.dtype)
        noise = normal(shape)
        if self.observation == "gaussian":
            return observed.loc + observed.scale * noise
        # Student-t: N(0, 1) / sqrt(Gamma(df/2, rate=1/2)/df); the Gamma draw has implicit reparametrisation gradients
        chi2 = tf.random.stateless_gamma(shape, seed=gamma_seed, alpha=0.5 * observed.df, beta=0.5, dtype=noise.dtype)
        return observed.loc + observed.scale * noise / tf.sqrt(chi2 / observed.df)

    def values_per_row(self, draws=1):
        # per importance chunk: the decoder's parameters (and a few copies of them) for every entry, the
        # widest hidden layer; plus each draw's latent and its sampled example
        n_params = OBSERVATION_PARAMS[self.observation]
        widest = max(self.decoder_units + self.encoder_units + [self.dense_units])
        if len(self.example_shape) == 3:
            widest = max(widest, self.filters * self.n_features)  # the last transposed convolution's output
        per_draw = (n_params + 4) * self.n_features + widest
        return self.importance_chunk * per_draw + draws * (self.latent_dim + 2 * self.n_features)

    # --- density --------------------------------------------------------------------------------
    def log_likelihood_batch(self, x, mask, samples):
        """log p̂(x°) = log (1/K) Σ_k r_k with K = `samples` draws per row (eq. 3's estimate), [batch]."""
        mean, scale = self.posterior(x, mask)
        samples = tf.cast(samples, tf.int32)
        chunk = tf.minimum(self.importance_chunk, samples)
        n_chunks = (samples + chunk - 1) // chunk
        batch = tf.shape(x)[0]

        def body(i, log_total):
            size = tf.minimum(chunk, samples - i * chunk)
            z = self.draw_latents(mean, scale, size)
            log_w, _, _ = self.log_weights(x, mask, z, mean, scale)
            return i + 1, tf.math.reduce_logsumexp(tf.concat([log_total[None], log_w], axis=0), axis=0)

        _, log_total = tf.while_loop(lambda i, _: i < n_chunks, body, (tf.constant(0), tf.fill([batch], tf.constant(-np.inf, x.dtype))))
        return log_total - tf.math.log(tf.cast(samples, x.dtype))

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {
            "latent_dim": 3, "encoder_units": [8], "decoder_units": [8, 6], "observation": "gaussian", "imputation": "zero",
            "samples": 4, "imputation_samples": 30, "importance_chunk": 7, "seed": 2,
        }
        return example

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "encoder_units": self.encoder_units,
                "decoder_units": self.decoder_units,
                "observation": self.observation,
                "imputation": self.imputation,
                "samples": self.samples,
                "imputation_samples": self.imputation_samples,
                "importance_chunk": self.importance_chunk,
                "activation": self.activation,
                "filters": self.filters,
                "dense_units": self.dense_units,
            }
        )
        return config
