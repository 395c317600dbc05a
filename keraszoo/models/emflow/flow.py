"""The RealNVP flow EMFlow and MCFlow share: affine coupling layers from `tfp.bijectors.RealNVP`.

emflow.md eqs. 24-25: a coupling layer keeps the d conditioning entries and maps the others by
y = x * exp(s(x_{1:d})) + t(x_{1:d}). The shapes follow MCFlow's reference code (trevor-richardson/MCFlow,
which emflow.md Sec. 4 says both papers share: "the same normalizing flow with six affine coupling
layers"; `../shared/notes/reference-implementations.md` section 6): `coupling_pairs` = 3 draws of a
random half/half split of the features, each used twice, once conditioning on one half and once on the
other, so six coupling layers; separate s- and t-networks per layer, each with 3 hidden layers as wide
as the data (LeakyReLU), s ending in tanh, t linear.

Every s- and t-network is a Keras 3 functional model held by one `CouplingNetworks` layer of the Keras
model that owns the flow, so Keras tracks, saves and trains its weights; the bijector is rebuilt from them at each
call (cheap: no variables), its `shift_and_log_scale_fn` a plain function of the two networks. TFP's own
network helpers (`real_nvp_default_template`, `AutoregressiveNetwork`, `tfp.layers`) are tf_keras objects
whose weights a Keras 3 model would not track (they would never train), hence this construction.

Direction: `forward` is f_psi of eq. 2, latent -> data (x = f(z)); `inverse` is f_psi^{-1} (z = f^{-1}(x)).
The split's halves are not contiguous: each pair of layers runs between a permutation and its inverse,
so latent entry j stays paired with data entry j (emflow.md eq. 11 treats z_j as missing where x_j is).
"""
import keras
import numpy as np
import tensorflow as tf

#: PyTorch's nn.LeakyReLU default slope, which MCFlow's networks use.
LEAKY_SLOPE = 0.01


def coupling_network(n_inputs, n_outputs, hidden_units, output_activation, seed, name, zero_output=True):
    """n_inputs -> hidden_units (LeakyReLU) -> n_outputs (`output_activation`), built (its weights exist).

    `zero_output`: the output layer starts at zero, so every coupling layer, and the flow, starts as the
    identity (Glow's zero initialisation; MCFlow's code uses PyTorch's default initialisation)."""
    inputs = keras.Input(shape=(n_inputs,))
    h = inputs
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed + i), name=f"hidden_{i}")(h)
        h = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)(h)
    output_init = "zeros" if zero_output else keras.initializers.GlorotUniform(seed + len(hidden_units))
    outputs = keras.layers.Dense(n_outputs, activation=output_activation, kernel_initializer=output_init, name="output")(h)
    return keras.Model(inputs, outputs, name=name)


class CouplingNetworks(keras.layers.Layer):
    """The flow's s- and t-networks in one layer (one object whose `trainable_variables` an optimizer
    trains), in the order of `coupling_networks`: s and t of layer 0, of layer 1, ..."""

    def __init__(self, pairs, **kwargs):
        super().__init__(**kwargs)
        self.networks = [network for pair in pairs for network in pair]
        self.built = True

    def pairs(self):
        return list(zip(self.networks[0::2], self.networks[1::2]))


def split_permutations(n_features, coupling_pairs, seed):
    """One random permutation of the features per pair of coupling layers (fixed by `seed`)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n_features).astype(np.int32) for _ in range(coupling_pairs)]


def coupling_networks(n_features, coupling_pairs, hidden_units, seed):
    """[(s, t) per coupling layer]: layer 2k conditions on the first half of pair k's permutation
    (`n_features // 2` entries) and transforms the rest; layer 2k + 1 the other way round."""
    first = n_features // 2
    networks = []
    for layer in range(2 * coupling_pairs):
        n_in, n_out = (first, n_features - first) if layer % 2 == 0 else (n_features - first, first)
        base = seed + 100 * layer
        networks.append(
            (
                coupling_network(n_in, n_out, hidden_units, "tanh", base, f"coupling_{layer}_log_scale"),
                coupling_network(n_in, n_out, hidden_units, None, base + 50, f"coupling_{layer}_shift"),
            )
        )
    return networks


def bijectors():
    """`tfp.bijectors`, imported on first use (TFP adds about a second to every process importing the zoo)."""
    import tensorflow_probability as tfp

    return tfp.bijectors


def realnvp(networks, permutations):
    """The flow f as one `tfb.Chain` (forward: latent -> data) from `coupling_networks`' (s, t) pairs."""
    tfb = bijectors()
    n_features = len(permutations[0])
    first = n_features // 2
    layers = []  # in the order the forward pass applies them
    for k, permutation in enumerate(permutations):
        inverse = np.argsort(permutation).astype(np.int32)
        (s_a, t_a), (s_b, t_b) = networks[2 * k], networks[2 * k + 1]
        layers += [
            tfb.Permute(permutation),
            tfb.RealNVP(num_masked=first, shift_and_log_scale_fn=_shift_and_log_scale(s_a, t_a)),
            tfb.RealNVP(num_masked=-(n_features - first), shift_and_log_scale_fn=_shift_and_log_scale(s_b, t_b)),
            tfb.Permute(inverse),
        ]
    return tfb.Chain(layers[::-1])  # Chain applies its last bijector first


def _shift_and_log_scale(log_scale_net, shift_net):
    def fn(conditioning, output_units, **condition_kwargs):
        del output_units, condition_kwargs  # the networks' shapes are fixed when they are built
        return shift_net(conditioning), log_scale_net(conditioning)

    return fn


def gaussian_log_prob(z, mean, scale_tril):
    """log N(z; mean, L L^T) of each row of z [B, p], with L = `scale_tril` (lower Cholesky factor)."""
    p = tf.cast(tf.shape(z)[-1], z.dtype)
    centred = tf.transpose(z - mean)  # [p, B]
    white = tf.linalg.triangular_solve(scale_tril, centred, lower=True)
    log_det = 2.0 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(scale_tril)))
    return -0.5 * (tf.reduce_sum(tf.square(white), axis=0) + log_det + p * np.log(2.0 * np.pi))
