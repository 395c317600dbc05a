"""Small building blocks shared by the zoo's networks."""
import keras


def mlp(n_inputs, hidden_units, n_outputs, output_activation, seed, name):
    """A fully connected network n_inputs -> hidden_units... -> n_outputs, ReLU inside, Xavier (Glorot) init.

    Built immediately (its input size is known), so weights exist before `fit` — needed to build
    optimizers up front under a distribution strategy.
    """
    layers = [keras.Input(shape=(n_inputs,))]
    for i, units in enumerate(hidden_units):
        layers.append(
            keras.layers.Dense(units, activation="relu", kernel_initializer=keras.initializers.GlorotNormal(seed + i), name=f"hidden_{i}")
        )
    layers.append(
        keras.layers.Dense(
            n_outputs,
            activation=output_activation,
            kernel_initializer=keras.initializers.GlorotNormal(seed + len(hidden_units)),
            name="output",
        )
    )
    return keras.Sequential(layers, name=name)
