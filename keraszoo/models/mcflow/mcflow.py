"""MCFlow (Richardson, Calder, Mulchandani & Liang, CVPR 2020): a normalizing flow and a latent network
that predicts the likeliest embedding, trained in rounds that re-impute the data.

The paper is not in `../shared/papers/`; this follows its reference code, as described in
`../shared/notes/reference-implementations.md` section 6 (trevor-richardson/MCFlow), and emflow.md's
statement that EMFlow and MCFlow share "the same normalizing flow with six affine coupling layers".
"""
import keras
import numpy as np
import tensorflow as tf

from keraszoo.models.base import positive_int
from keraszoo.models.emflow import flow
from keraszoo.models.emflow.flow_imputer import FlowImputer
from keraszoo.registry import register_model


def latent_network(n_features, layers, seed):
    """MCFlow's latent network: `layers` linear layers, all of width D, LeakyReLU between them (not after
    the last), mapping an embedding z to the likeliest embedding z-hat."""
    inputs = keras.Input(shape=(n_features,))
    h = inputs
    for i in range(layers):
        h = keras.layers.Dense(n_features, kernel_initializer=keras.initializers.GlorotUniform(seed + i), name=f"linear_{i}")(h)
        if i < layers - 1:
            h = keras.layers.LeakyReLU(negative_slope=flow.LEAKY_SLOPE)(h)
    return keras.Model(inputs, h, name="latent_network")


@register_model("mcflow")
class MCFlow(FlowImputer):
    """MCFlow: the RealNVP of `keraszoo.models.emflow.flow` on a standard normal base, and a latent network
    g (`latent_layers` = 5 linear layers of width D) completing embeddings.

    **Training step** (one batch of the current imputation x-hat; the reference code's order):

    1. flow: -log p_X(x-hat) under N(0, I), averaged over the batch; one Adam step on the flow.
    2. latent network, with the updated flow: z = f^-1(x-hat), z-hat = g(z), x' = f(z-hat); loss = the
       squared error of x' on the OBSERVED entries, summed over them and over the batch's rows (the
       reference code's sum: it weighs the error by the batch size against the NLL), plus the mean
       negative log-likelihood of x' under the flow; one Adam step on g only.

    Two departures from the reference code, both fixes of its bugs (notes, section 6): its flow optimizer
    steps between the two backward passes while the second reuses the first graph (modern PyTorch
    refuses this: its issue #3), and the flow's gradients from the latent loss are never zeroed and leak
    into the next flow step. Here the latent loss is computed with the updated flow and trains g only.

    **Rounds** (`FlowImputer.fit_rounds`): re-imputation after passes 2, 4, 8, 16, ... over the training
    rows (the reference code's epochs, the interval doubling; each at the nearest Keras epoch, rounds at
    least one Keras epoch long; the last round ends with training), after which the
    flow and its optimizer are re-initialised and the latent network kept. Re-imputation: x-hat's missing
    entries take f(g(f^-1(x-hat)))'s, clipped to [0, 1].

    Defaults: Adam 1e-4 for both, batch 64 (the reference code's).
    """

    optimizer_networks = {"flow_optimizer": "coupling_networks", "latent_optimizer": "latent_network"}
    default_learning_rates = {"flow_optimizer": 1e-4, "latent_optimizer": 1e-4}
    default_batch_size = 64
    default_iterations = 5000

    def __init__(self, coupling_pairs=3, hidden_units=None, latent_layers=5, imputation_passes=3, proposal_scale=1.0, seed=0, **kwargs):
        super().__init__(coupling_pairs=coupling_pairs, hidden_units=hidden_units, imputation_passes=imputation_passes,
                         proposal_scale=proposal_scale, seed=seed, **kwargs)
        self.latent_layers = positive_int(latent_layers, "latent_layers")
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.latent_tracker = keras.metrics.Mean(name="latent_loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="mse_observed")

    def build_networks(self, example_shape):
        super().build_networks(example_shape)
        self.latent_network = latent_network(self.n_features, self.latent_layers, self.seed * 1000 + 900)

    def compile(self, flow_optimizer=None, latent_optimizer=None, **kwargs):
        """`flow_optimizer` trains the flow, `latent_optimizer` the latent network (Adam(1e-4) each if None)."""
        super().compile(flow_optimizer=flow_optimizer, latent_optimizer=latent_optimizer, **kwargs)

    @property
    def metrics(self):
        return [self.nll_tracker, self.latent_tracker, self.reconstruction_tracker]

    def base_log_prob(self, z):
        return -0.5 * tf.reduce_sum(tf.square(z), axis=-1) - 0.5 * self.n_features * np.log(2.0 * np.pi)

    def latent_imputation(self, z, observed):
        """g(z): the latent network's likeliest embedding (every entry: the flow keeps x-hat's observed ones)."""
        del observed
        return self.latent_network(z)

    def train_step(self, data):
        x_hat, observed = self.unpack(data[0], data[1])
        n_rows = self.global_count(x_hat)
        flow_variables = self.coupling_networks.trainable_variables
        latent_variables = self.latent_network.trainable_variables

        with tf.GradientTape() as tape:
            nll = -tf.reduce_sum(self.log_prob_rows(x_hat, self.bijector())) / n_rows
        self.flow_optimizer.apply_gradients(zip(tape.gradient(nll, flow_variables), flow_variables))

        bijector = self.bijector()  # fresh: the updated flow, not TFP's cached results of the old one
        z = tf.stop_gradient(bijector.inverse(x_hat))
        with tf.GradientTape() as tape:
            z_hat = self.latent_network(z, training=True)
            x_new = bijector.forward(z_hat)
            squared = tf.reduce_sum(observed * tf.square(x_new - x_hat), axis=1)
            log_p = self.log_prob_of_forward(z_hat, bijector)
            # the reference code's weighting: the squared error summed over the batch, the NLL averaged
            latent_loss = tf.reduce_sum(squared) - tf.reduce_sum(log_p) / n_rows
        self.latent_optimizer.apply_gradients(zip(tape.gradient(latent_loss, latent_variables), latent_variables))

        mse = tf.reduce_sum(squared) / tf.maximum(self.global_count(observed, entries=True), 1.0)
        return self.record({"nll": self.nll_tracker, "latent_loss": self.latent_tracker, "mse_observed": self.reconstruction_tracker},
                           {"nll": nll, "latent_loss": latent_loss, "mse_observed": mse})

    def round_bounds(self, epochs, steps_per_epoch, steps_per_pass):
        bounds, passes = [0], 2
        while True:
            end = round(passes * steps_per_pass / steps_per_epoch)  # the Keras epoch nearest the end of pass `passes`
            if end >= epochs:
                return np.array(bounds + [epochs])
            if end > bounds[-1]:  # passes ending inside the current Keras epoch share its boundary
                bounds.append(end)
            passes *= 2

    def start_round(self, index):
        """After the first round: a fresh flow (weights and optimizer); the latent network is kept."""
        if index > 0:
            self.reset_flow(index)

    @classmethod
    def contract_example(cls):
        example = super().contract_example()
        example["params"] = {"coupling_pairs": 2, "hidden_units": [8, 6], "latent_layers": 2, "imputation_passes": 2,
                             "proposal_scale": 0.5, "seed": 4}
        example["fit"] = {"iterations": 20, "batch_size": 16}
        return example

    def get_config(self):
        config = super().get_config()
        config.update({"latent_layers": self.latent_layers})
        return config
