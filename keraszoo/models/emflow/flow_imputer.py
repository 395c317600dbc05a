"""What EMFlow and MCFlow share: a RealNVP flow imputing in latent space, trained in rounds that
re-impute the training table (emflow.md Algorithm 2; MCFlow's code).

A subclass says how a latent row is completed (`latent_imputation`: EMFlow's conditional mean under its
EM-fitted Gaussian, MCFlow's latent network), what the base density is (`base_log_prob`), when rounds end
(`round_bounds`) and what a new round resets (`start_round`); this base does the rest:

* **Training table and rounds** (`fit_rounds`): the missing entries start from a random fill (tables: a
  draw from the column's observed values; images: one of the nearest observed pixels; `fills`); each
  round is one `fit` (the same callbacks, epochs numbered on) on the current imputation, after which
  the missing entries of the whole table are re-imputed: z = f^-1(x-hat), z-hat = the latent
  imputation, x-tilde = f(z-hat), and x-hat's missing entries take x-tilde's, clipped to [0, 1] (the
  scaled data's range; MCFlow's code clamps too). The batches carry the current imputation and the mask
  packed along the last axis, because the contract's datasets zero the missing entries.
* **Imputing new rows** (`impute`): a deterministic start (each column's training median; images: the
  mean of the nearest observed pixels, `fills.ring_mean_fill`) and `imputation_passes` passes of the
  same re-imputation with the trained model. The papers re-impute their test fold in every round with
  that round's model; a trained model keeps only its last round, so this is our stand-in.
* **Density** (`log_prob`, `log_likelihood`): log p_X(x) = log p_Z(f^-1(x)) + log|det d f^-1 / dx| (eq. 2),
  exact for a complete row (`log_prob`, exported as the ``log_prob`` signature; `log_likelihood` gives
  the same on a complete row, whatever its number of samples). For a row with missing entries, log p(x°) is estimated by importance sampling with
  `samples` draws of x^m from a Gaussian centred on the row's imputation, scale `proposal_scale` times
  each column's training standard deviation (a lower bound on average that tightens as `samples`
  grows; 1.0 keeps the proposal wider than the conditional spread: at 0.5 the estimate fell 0.06 nats
  short of a Gaussian's exact marginal with 4,000 draws, in the tests).

Direct `model.fit` on plain ``(x, mask)`` batches (not through `fit_arrays` or `training.train`) trains
one round, each batch's missing entries filled by its observed column means.
"""
import numpy as np
import tensorflow as tf

from keraszoo.models.base import DeepImputer, global_sum, merge_histories, positive_int
from keraszoo.models.emflow import fills, flow


class FlowImputer(DeepImputer):
    """Base of the flow imputers (see the module docstring); `optimizer_networks` names every optimizer of
    the flow's `coupling_networks` (a round's `reset_flow` clears them)."""

    example_kinds = ("table", "image")
    density = True
    exact_density = True
    min_steps_per_epoch = 50  # a round is at least one Keras epoch: small tables still get several rounds

    def __init__(self, coupling_pairs=3, hidden_units=None, imputation_passes=3, proposal_scale=1.0, seed=0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.coupling_pairs = positive_int(coupling_pairs, "coupling_pairs")
        if hidden_units is not None:
            if isinstance(hidden_units, (str, bytes)) or not hasattr(hidden_units, "__len__") or len(hidden_units) == 0:
                raise ValueError(f"hidden_units must be None or a non-empty list of positive widths, got {hidden_units!r}")
            hidden_units = [positive_int(u, "hidden_units") for u in hidden_units]
        self.hidden_units = hidden_units
        self.imputation_passes = positive_int(imputation_passes, "imputation_passes")
        self.proposal_scale = float(proposal_scale)
        if not self.proposal_scale > 0:
            raise ValueError(f"proposal_scale must be positive, got {proposal_scale!r}")

    # --- networks ----------------------------------------------------------------------------------
    def build_networks(self, example_shape):
        p = self.n_features
        if p < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 features: a coupling layer conditions half of them on the other half")
        self.coupling_networks = flow.CouplingNetworks(self.fresh_coupling_pairs(0), name="coupling_networks")
        self.permutations = flow.split_permutations(p, self.coupling_pairs, self.seed)
        state = self.state_options()
        self.fill_values = self.add_weight(name="fill_values", shape=example_shape, initializer="zeros", **state)
        self.feature_scale = self.add_weight(name="feature_scale", shape=(p,), initializer="ones", **state)

    @staticmethod
    def state_options():
        """Non-trainable state set outside the optimizers, the same on every replica."""
        return dict(trainable=False, aggregation="only_first_replica")

    def fresh_coupling_pairs(self, draw):
        """New (s, t) networks for the flow; `draw` 0 is the first initialisation, round r's redraw is r."""
        hidden = self.hidden_units or [self.n_features] * 3
        return flow.coupling_networks(self.n_features, self.coupling_pairs, hidden, self.seed * 1000 + 7919 * draw)

    def bijector(self):
        """f (forward: latent -> data) on flattened rows, rebuilt per call from the tracked networks. Use a
        fresh one after an optimizer step: TFP caches a bijector's results by input tensor."""
        return flow.realnvp(self.coupling_networks.pairs(), self.permutations)

    def flat(self, x):
        return tf.reshape(x, [-1, self.n_features])

    # --- the subclass's hooks ----------------------------------------------------------------------
    def base_log_prob(self, z):
        """log p_Z(z) of latent rows [B, p]."""
        raise NotImplementedError

    def latent_imputation(self, z, observed):
        """z-hat [B, p]: the latent rows completed where `observed` is 0 (graph mode)."""
        raise NotImplementedError

    def round_bounds(self, epochs, steps_per_epoch, steps_per_pass):
        """The Keras epochs at which rounds start, then `epochs`: [0, ..., epochs]. A Keras epoch runs
        `steps_per_epoch` steps and a pass over the training rows `steps_per_pass`."""
        raise NotImplementedError

    def start_round(self, index):
        """Called before round `index` trains (after the table was re-imputed, for index > 0)."""

    def log_prob_rows(self, rows, bijector=None):
        """log p_X of complete flattened rows [B, p] (eq. 2)."""
        bijector = bijector or self.bijector()
        return self.base_log_prob(bijector.inverse(rows)) + bijector.inverse_log_det_jacobian(rows, event_ndims=1)

    def log_prob_batch(self, x):
        """Eq. 2's exact log p_X of complete rows [batch, *example_shape] (the `log_prob` signature)."""
        return self.log_prob_rows(self.flat(x))

    def log_prob_of_forward(self, z, bijector):
        """log p_X(f(z)) of latent rows z [B, p] = log p_Z(z) - log|det df/dz| (no inverse pass needed)."""
        return self.base_log_prob(z) - bijector.forward_log_det_jacobian(z, event_ndims=1)

    # --- training ----------------------------------------------------------------------------------
    def unpack(self, x, mask):
        """(x-hat [B, p], observed [B, p]) of a training batch (see the module docstring)."""
        channels = self.example_shape[-1]
        if x.shape[-1] == 2 * channels:
            return self.flat(x[..., :channels]), self.flat(x[..., channels:])
        x, observed = self.flat(x), self.flat(mask)
        sums = global_sum(tf.stack([tf.reduce_sum(x * observed, axis=0), tf.reduce_sum(observed, axis=0)]))
        means = sums[0] / tf.maximum(sums[1], 1.0)
        return tf.where(observed > 0, x, means[None]), observed

    @staticmethod
    def global_count(tensor, entries=False):
        """The global batch's number of rows of `tensor` (or, with `entries`, the sum of its entries: a
        mask's count of observed entries), the denominator of per-row and per-entry losses."""
        count = tf.reduce_sum(tensor) if entries else tf.cast(tf.shape(tensor)[0], tensor.dtype)
        return global_sum(count)

    def fit_rounds(self, x, mask, y=None, *, make_dataset, epochs, steps_per_epoch, batch_size=None, callbacks=None, verbose=0):
        """The rounds of the module docstring; returns every round's history merged. `batch_size` (the
        global batch; None: a Keras epoch counts as a pass) says how many steps a pass over the rows takes."""
        x = np.asarray(x, dtype=np.float32)
        mask = np.asarray(mask, dtype=np.float32)
        self.set_fill_statistics(x, mask)
        x_hat = self.initial_fill(x, mask, np.random.default_rng(self.seed))
        steps_per_pass = max(1, len(x) // int(batch_size)) if batch_size else int(steps_per_epoch)
        bounds = self.round_bounds(int(epochs), int(steps_per_epoch), steps_per_pass)
        histories = []
        for r in range(len(bounds) - 1):
            if r > 0:
                x_hat = self.reimpute(x_hat, mask)
            self.start_round(r)
            packed = np.concatenate([x_hat, mask], axis=-1)
            histories.append(
                self.fit(make_dataset(packed, np.ones_like(packed)), initial_epoch=int(bounds[r]), epochs=int(bounds[r + 1]),
                         steps_per_epoch=int(steps_per_epoch), shuffle=False, verbose=verbose, callbacks=callbacks)
            )
            if self.stop_training:
                break
        return merge_histories(histories)

    def initial_fill(self, x, mask, rng):
        if len(self.example_shape) == 3:
            return fills.nearest_observed_fill(np.where(mask > 0, x, 0.0), mask, rng)
        return fills.random_observed_fill(np.where(mask > 0, x, 0.0), mask, rng)

    def set_fill_statistics(self, x, mask):
        """Each column's observed median (the deterministic start of `impute`) and standard deviation (the
        importance-sampling proposal's scale), from the training table."""
        flat_x, flat_m = x.reshape(len(x), -1), mask.reshape(len(mask), -1)
        observed = np.where(flat_m > 0, flat_x, np.nan)
        observed[:, flat_m.sum(axis=0) == 0] = 0.0  # a column never observed: median 0, spread the floor
        medians, stds = np.nanmedian(observed, axis=0), np.nanstd(observed, axis=0)
        self.fill_values.assign(medians.reshape(self.example_shape).astype(np.float32))
        self.feature_scale.assign(np.maximum(stds, 1e-3).astype(np.float32))

    def reset_flow(self, draw):
        """Redraw the flow's weights (draw `draw`) and zero the moments and step count of every optimizer
        that trains it."""
        for network, new in zip(self.coupling_networks.networks, [n for pair in self.fresh_coupling_pairs(draw) for n in pair]):
            network.set_weights(new.get_weights())
        for name, networks in self.optimizer_networks.items():
            if "coupling_networks" not in ((networks,) if isinstance(networks, str) else tuple(networks)):
                continue
            for variable in getattr(self, name).variables:
                if not variable.path.endswith("learning_rate"):
                    variable.assign(tf.zeros_like(variable))

    # --- re-imputation and imputation --------------------------------------------------------------
    def reimpute_once(self, x_hat, observed, bijector=None):
        """One re-imputation pass on flattened rows: x-hat's missing entries take f(z-hat)'s, clipped to [0, 1]."""
        bijector = bijector or self.bijector()
        z_hat = self.latent_imputation(bijector.inverse(x_hat), observed)
        return tf.where(observed > 0, x_hat, tf.clip_by_value(bijector.forward(z_hat), 0.0, 1.0))

    def reimpute(self, x_hat, mask):
        """One pass over the whole training table (NumPy in and out), a bounded chunk of rows at a time."""
        function = getattr(self, "_reimpute_fn", None)
        if function is None:
            function = tf.function(lambda a, m: tf.reshape(self.reimpute_once(self.flat(a), self.flat(m)), tf.shape(a)), reduce_retracing=True)
            object.__setattr__(self, "_reimpute_fn", function)
        chunk = self.rows_per_chunk()
        return np.concatenate([function(tf.constant(x_hat[i : i + chunk]), tf.constant(mask[i : i + chunk])).numpy() for i in range(0, len(x_hat), chunk)])

    def start_fill(self, x, mask):
        """The deterministic start of `impute` (see `fills`): column medians, or the nearest observed pixels."""
        if len(self.example_shape) == 3:
            return fills.ring_mean_fill(x, mask, self.fill_values)
        return tf.where(mask > 0, x, self.fill_values[None])

    def impute_batch(self, x, mask):
        bijector = self.bijector()
        x_hat, observed = self.flat(self.start_fill(x, mask)), self.flat(mask)
        for _ in range(self.imputation_passes):
            x_hat = self.reimpute_once(x_hat, observed, bijector)
        return tf.reshape(x_hat, tf.shape(x))

    def log_likelihood_batch(self, x, mask, samples):
        """log p_X(x) of complete rows; importance-sampled log p(x°) of incomplete ones (module docstring)."""
        bijector = self.bijector()
        observed = self.flat(mask)
        center = self.flat(self.impute_batch(x, mask))
        scale = self.proposal_scale * self.feature_scale
        missing = 1.0 - observed
        draws = center[None] + missing[None] * scale * self.random_normal(tf.concat([[samples], tf.shape(center)], axis=0))
        log_p = tf.reshape(self.log_prob_rows(tf.reshape(draws, [-1, self.n_features]), bijector), [samples, -1])
        standard = (draws - center[None]) / scale
        log_q = tf.reduce_sum(missing[None] * (-0.5 * tf.square(standard) - tf.math.log(scale) - 0.5 * np.log(2.0 * np.pi)), axis=2)
        return tf.reduce_logsumexp(log_p - log_q, axis=0) - tf.math.log(tf.cast(samples, x.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "coupling_pairs": self.coupling_pairs,
                "hidden_units": self.hidden_units,
                "imputation_passes": self.imputation_passes,
                "proposal_scale": self.proposal_scale,
            }
        )
        return config
