"""not-MIWAE: deep generative modelling with data missing not at random (Ipsen, Mattei & Frellsen, ICLR 2021).

The paper is not in `../shared/papers/`; this follows its equations as the authors' code implements
them (nbip/notMIWAE, `notMIWAE.py` and `utils.py`; see `../shared/notes/reference-implementations.md`,
section 5).

**Model.** MIWAE's deep latent variable model of the data (z ~ N(0, I), x ~ p_θ(x | z), encoder
q_γ(z | x°); `keraszoo.models.miwae`) and a model of the missingness, s = the mask (1 = observed):

    p(x°, s) = ∫∫ p_φ(s | x°, x^m) p_θ(x°, x^m | z) p(z) dx^m dz,

with p_φ(s | x) one of `missing_process` (see `keraszoo.models.notmiwae.missingness`): self-masking
logistic per entry (default, the paper's model for self-masking MNAR), the same with a known sign, or a
network (linear or one tanh layer) from the whole example. Under MNAR, MIWAE's bound ignores that an
entry's value changed its chance of being seen, and its imputations are biased towards the observed values.
Under MCAR the missingness model has nothing to learn (breast at 20% MCAR: RMSE 0.0671, near MIWAE's
0.0603). **Under MAR it is not harmless**: when an entry's missingness depends on other, correlated
columns, a self-masking model explains it through the entry's own value and over-corrects. Measured on
breast at 50% MAR (`benchmarks/results/auto_deep_mar50_breast.md`): RMSE 0.5042 against the mean's
0.2091; in seed 0 the learned slopes say "larger is more often missing" for 8 of the 9 incomplete
columns (true there, but the imputed column means overshoot, 0.32-0.74 against 0.22-0.50 in range
units, with single values up to 3.5) and the opposite for the ninth (imputed mean -0.25 against 0.29).
Use not-MIWAE only where the missingness is believed to depend on the missing values themselves.

**Training** (the not-MIWAE bound): with (z_k, x^m_k) ~ q_γ(z | x°) p_θ(x^m | z), k = 1..K,

    L_K = E[log (1/K) Σ_k p_φ(s | x°, x^m_k) p_θ(x° | z_k) p(z_k) / q_γ(z_k | x°)].

x^m_k is reparametrised (x^m = loc + scale·ε, and the Student-t's Gamma draw has implicit reparametrisation
gradients), so the bound's gradient reaches the decoder through the missing entries too. A Bernoulli
observation model has no reparametrisation: refused (the authors' code samples it without a gradient,
which biases the decoder's gradient silently). Logged: `bound`, `log_px_observed` and `log_ps` (the
mean over draws of log p_φ(s | x), the missingness model's fit).

**Single imputation**: self-normalised importance sampling with the same proposal and L =
`imputation_samples` draws, x̂^m = Σ_l w_l x^m_l with w_l ∝ p_φ(s | x°, x^m_l) p_θ(x° | z_l) p(z_l) / q_γ(z_l | x°).
The weights depend on the drawn x^m_l, so the values averaged are the draws themselves, not E[x^m | z_l]
as in MIWAE (the authors' `not_imputationRMSE`). Chunked and seeded as MIWAE's: deterministic, memory of
one chunk. **Multiple imputation**: sampling importance resampling over the same weighted pairs (z_l,
x^m_l), keeping the chosen x^m_l itself.

**Log-likelihood** (`log_likelihood`, the exported signature): log p̂(x°) of the data model, MIWAE's
estimate with this model's encoder as the proposal (any proposal gives an unbiased estimate of p(x°)),
so held-out values compare with MIWAE's. The joint log p(x°, s) is what `bound` tracks in training.

Defaults are MIWAE's networks with a Gaussian observation model (the paper's UCI experiments; the
authors' `task01.py` used tanh, 2×128 layers, latent D − 1, batch 16 and K = 20) and the authors' batch
size of 16 (`fit_arrays`; `training.train` takes it as the model's default too).
"""
import math

import keras
import numpy as np
import tensorflow as tf

from keraszoo.models.base import global_sum
from keraszoo.models.miwae.miwae import MIWAE
from keraszoo.models.notmiwae import missingness
from keraszoo.registry import register_model


@register_model("notmiwae")
class NotMIWAE(MIWAE):
    """not-MIWAE imputer: MIWAE's model and a model of p(s | x), trained on the joint bound, imputing by
    importance sampling with the missingness in the weights. See the module docstring."""

    def __init__(
        self,
        missing_process="selfmasking",
        missing_units=128,
        latent_dim=10,
        encoder_units=(128, 128, 128),
        decoder_units=(128, 128),
        observation="gaussian",
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
        super().__init__(
            latent_dim=latent_dim, encoder_units=encoder_units, decoder_units=decoder_units, observation=observation, imputation=imputation,
            samples=samples, imputation_samples=imputation_samples, importance_chunk=importance_chunk, activation=activation, filters=filters,
            dense_units=dense_units, seed=seed, **kwargs,
        )
        if self.observation == "bernoulli":
            raise ValueError(
                "not-MIWAE draws the missing entries by reparametrisation, which a Bernoulli observation model does not have: "
                "use observation='gaussian' or 'studentt'"
            )
        if missing_process not in missingness.PROCESSES:
            raise ValueError(f"missing_process must be one of {list(missingness.PROCESSES)}, got {missing_process!r}")
        if isinstance(missing_units, bool) or int(missing_units) != missing_units or missing_units < 1:
            raise ValueError(f"missing_units must be a positive integer, got {missing_units!r}")
        self.missing_process = missing_process
        self.missing_units = int(missing_units)
        self.log_ps_tracker = keras.metrics.Mean(name="log_ps")

    default_learning_rates = {"bound_optimizer": 1e-3, "missingness_optimizer": 1e-2}
    #: The authors' batch size (`task01.py`). At the zoo's usual 128 the 10,000 default steps are ~2,250
    #: passes over a 569-row table, and the imputations drift towards the missingness model's side as the
    #: model overfits (measured on breast cancer under `mnar_mask`, known sign: RMSE 0.28, 0.23, 0.25,
    #: 0.29, 0.33 at 2,000 ... 10,000 steps; at batch 16: 0.21, 0.17, 0.14, 0.13, 0.12, against MIWAE's 0.14).
    default_batch_size = 16

    @property
    def optimizer_networks(self):
        """{optimizer: networks}: both Adams descend the joint bound, `bound_optimizer` for MIWAE's networks,
        `missingness_optimizer` for p_φ(s | x). The missingness model's own (higher) rate: on min-max data
        a self-masking slope must reach about strength / std ≈ 10 or more, which Adam at 1e-3 takes
        ~10,000 steps to travel from 0 (the authors train 100,000 steps on z-scored data)."""
        return {**super().optimizer_networks, "missingness_optimizer": ("missingness",)}

    def compile(self, bound_optimizer=None, missingness_optimizer=None, **kwargs):
        """`bound_optimizer` (Adam(1e-3) if None) and `missingness_optimizer` (Adam(1e-2) if None)."""
        super(MIWAE, self).compile(bound_optimizer=bound_optimizer, missingness_optimizer=missingness_optimizer, **kwargs)

    @property
    def metrics(self):
        return super().metrics + [self.log_ps_tracker]

    def build_networks(self, example_shape):
        super().build_networks(example_shape)
        self.missingness = missingness.missingness_model(self.missing_process, example_shape, self.missing_units, self.seed * 1000 + 200)

    def fit_rounds(self, x, mask, y=None, **kwargs):
        """MIWAE's training, after a data-dependent start of a self-masking model (before its first step
        only): each offset b_j starts at entry j's observed mean. From b = 0 on data in [0, 1], every
        entry lies above b, the first gradients of log p(s | x) push w_j towards "larger values are the
        more OBSERVED" whatever the data, and the model stays in that wrong mode (measured on breast
        cancer under `mnar_mask`: every learned slope negative); from the observed mean, the sign is
        decided by how the drawn missing values compare with the observed ones."""
        if isinstance(self.missingness, missingness.SelfMasking) and int(self.bound_optimizer.iterations) == 0:
            counts = mask.sum(axis=0)
            means = np.where(counts > 0, (np.where(mask > 0, x, 0.0)).sum(axis=0) / np.maximum(counts, 1), 0.0)
            self.missingness.offset.assign(means.astype(self.missingness.offset.dtype))
        return super().fit_rounds(x, mask, y, **kwargs)

    # --- the joint weights ----------------------------------------------------------------------
    def joint_log_weights(self, x, mask, z, mean, scale, seed=None, training=False):
        """For z [c, batch, d]: draw x^m ~ p_θ(x^m | z) (reparametrised; stateless from `seed` if given)
        and return (log r [c, batch] with p_φ(s | x°, x^m) in it, log p_θ(x° | z), log p_φ(s | x),
        the completed examples [c, batch, ...])."""
        log_w, log_px, observed = self.log_weights(x, mask, z, mean, scale, training=training)
        drawn = self.sample_observation(observed, seed)
        drawn = tf.ensure_shape(drawn, z.shape[:2].concatenate(x.shape[1:]))  # the static shape, for the imputation loops
        completed = mask[None] * x[None] + (1.0 - mask[None]) * drawn
        log_ps = missingness.log_prob_observed_pattern(self.missingness(completed), mask[None], self._example_axes(2))
        return log_w + log_ps, log_px, log_ps, completed

    # --- training -------------------------------------------------------------------------------
    def train_step(self, data):
        x, mask = data
        x = tf.where(mask > 0, x, tf.zeros_like(x))
        batch = global_sum(tf.cast(tf.shape(x)[0], x.dtype))
        with tf.GradientTape() as tape:
            mean, scale = self.posterior(x, mask, training=True)
            z = self.draw_latents(mean, scale, self.samples)
            log_w, log_px, log_ps, _ = self.joint_log_weights(x, mask, z, mean, scale, training=True)
            bound = tf.math.reduce_logsumexp(log_w, axis=0) - math.log(self.samples)  # the not-MIWAE bound, one row each
            loss = -tf.reduce_sum(bound) / batch
        updates = self.optimizers_and_variables()
        gradients = tape.gradient(loss, [v for _, _, variables in updates for v in variables])
        for _, optimizer, variables in updates:
            optimizer.apply_gradients(zip(gradients[: len(variables)], variables))
            gradients = gradients[len(variables):]
        per_row = lambda value: tf.reduce_sum(tf.reduce_mean(value, axis=0)) / batch  # noqa: E731
        logs = self.record(
            {"bound": self.bound_tracker, "log_px_observed": self.log_px_tracker, "log_ps": self.log_ps_tracker},
            {"bound": tf.reduce_sum(bound) / batch, "log_px_observed": per_row(log_px), "log_ps": per_row(log_ps)},
        )
        return {**logs, "samples": tf.constant(float(self.samples))}

    # --- imputation: MIWAE's loops (`impute_batch`, `sample_batch`) with the joint weights ------------
    def weighted_values(self, x, mask, z, mean, scale, seed):
        """(log r with p_φ(s | x), the completed draw x^m_l): eq. 5's average is over the drawn values."""
        log_w, _, _, completed = self.joint_log_weights(x, mask, z, mean, scale, seed=seed)
        return log_w, completed

    @property
    def resampled_width(self):
        return self.n_features

    def resampled_values(self, x, mask, z, mean, scale):
        """SIR keeps each draw's completed example (its weight depends on it), flattened."""
        log_w, _, _, completed = self.joint_log_weights(x, mask, z, mean, scale)
        return log_w, tf.reshape(completed, tf.stack([tf.shape(z)[0], tf.shape(x)[0], self.n_features]))

    def resampled_draws(self, chosen):
        return tf.reshape(chosen, tf.concat([tf.shape(chosen)[:2], self.example_shape], axis=0))

    def values_per_row(self, draws=1):
        # MIWAE's, plus per importance draw the drawn example, the completed one, its logits and the
        # missingness network's hidden layer; plus each kept draw's example
        hidden = self.missing_units if self.missing_process == "nonlinear" else 0
        return super().values_per_row(draws) + self.importance_chunk * (4 * self.n_features + hidden) + draws * self.n_features

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {**example["params"], "missing_process": "nonlinear", "missing_units": 5, "observation": "studentt"}
        return example

    def get_config(self):
        return {**super().get_config(), "missing_process": self.missing_process, "missing_units": self.missing_units}
