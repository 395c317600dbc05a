"""Column encoders: raw column values in, (features [batch, width], observed [batch]) out; `width` says how wide.

Every encoder gives zero features where its cell is missing and says so in `observed`, so that the
network can hide a cell it is asked to predict (`network.MixedTableNet`) exactly as a missing one.
Preprocessing lives in these layers, so a saved or exported model takes raw columns.
"""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keraszoo")
class NumericEncoder(keras.layers.Layer):
    """A numeric column (float32, NaN = missing): z-scored with the training mean and std, 0 where missing.

    With quantile `edges` (b_0 < ... < b_K) it also gives the piecewise-linear encoding of Gorishniy,
    Rubachev & Babenko (NeurIPS 2022, "On embeddings for numerical features in tabular deep learning"):
    feature t is clip((x - b_(t-1)) / (b_t - b_(t-1)), 0, 1), so a dense layer on top is a learned
    piecewise-linear function of x with breaks at the quantiles, which plain z-scores give an MLP only
    through many ReLUs.
    """

    def __init__(self, mean=0.0, std=1.0, edges=(), **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.edges = float(mean), float(std), [float(e) for e in edges]

    @property
    def width(self):
        return 1 + max(0, len(self.edges) - 1)

    def call(self, values):
        values = tf.cast(values, tf.float32)
        observed = tf.math.is_finite(values)
        safe = tf.where(observed, values, self.mean)
        features = [((safe - self.mean) / self.std)[:, None]]
        if len(self.edges) > 1:
            low = tf.constant(self.edges[:-1], tf.float32)
            span = tf.constant([b - a for a, b in zip(self.edges[:-1], self.edges[1:])], tf.float32)
            features.append(tf.clip_by_value((safe[:, None] - low) / span, 0.0, 1.0))
        encoded = tf.concat(features, axis=1)
        return tf.where(observed[:, None], encoded, 0.0), tf.cast(observed, tf.float32)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "edges": self.edges}


@keras.saving.register_keras_serializable(package="keraszoo")
class CategoricalEncoder(keras.layers.Layer):
    """A categorical column (strings, "" = missing): `StringLookup` + `Embedding`.

    Index 0 is the out-of-vocabulary bucket: a category not seen in training (or beyond the vocabulary
    limit) gets that bucket's learned embedding, not an error.
    """

    def __init__(self, vocabulary=(), embedding_dim=10, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = [str(v) for v in vocabulary]
        self.embedding_dim = int(embedding_dim)
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary, num_oov_indices=1, mask_token=None, name="lookup")
        self.embedding = keras.layers.Embedding(len(self.vocabulary) + 1, self.embedding_dim, name="embedding")

    @property
    def width(self):
        return self.embedding_dim

    def build(self, input_shape):
        self.embedding.build((None,))
        self.built = True

    def call(self, values):
        observed = tf.not_equal(values, "")
        vectors = self.embedding(self.lookup(values))
        return vectors * tf.cast(observed, vectors.dtype)[:, None], tf.cast(observed, tf.float32)

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "embedding_dim": self.embedding_dim}


def char_ngrams(values, ngram_range, tokens="chars"):
    """Ragged [batch, (grams)] n-gram strings of lower-cased `values`: characters (unicode code points) or words."""
    lowered = tf.strings.lower(values, encoding="utf-8")
    if tokens == "chars":
        pieces, separator = tf.strings.unicode_split(lowered, "UTF-8"), ""
    else:
        pieces, separator = tf.strings.split(lowered), " "
    low, high = ngram_range
    return tf.concat([tf.strings.ngrams(pieces, n, separator=separator) for n in range(low, high + 1)], axis=1)


@keras.saving.register_keras_serializable(package="keraszoo")
class HashedTextEncoder(keras.layers.Layer):
    """A free-text column: hashed character (or word) n-grams, each with a learned vector, summed / sqrt(count).

    Datawig hashes n-grams (sklearn's `HashingVectorizer`, char 1-5 grams, 2**15 buckets) into a sparse
    count vector fed to a linear layer; an embedding per bucket summed over the row's n-grams is that
    same linear map, without the [batch, 2**15] dense counts. `TextVectorization` cannot hash (it needs
    an adapted vocabulary), so the n-grams are hashed here with `tf.strings.to_hash_bucket_fast`; the
    optional LSTM encoder (`SequenceTextEncoder`) uses `TextVectorization`. Unicode text is split into
    code points, not bytes.
    """

    def __init__(self, num_buckets=2**15, embedding_dim=16, ngram_range=(1, 5), tokens="chars", **kwargs):
        super().__init__(**kwargs)
        if tokens not in ("chars", "words"):
            raise ValueError(f"tokens must be 'chars' or 'words', got {tokens!r}")
        self.num_buckets, self.embedding_dim = int(num_buckets), int(embedding_dim)
        self.ngram_range, self.tokens = tuple(int(n) for n in ngram_range), tokens

    @property
    def width(self):
        return self.embedding_dim

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_buckets, self.embedding_dim), initializer=keras.initializers.RandomNormal(stddev=0.05)
        )
        self.built = True

    def call(self, values):
        observed = tf.not_equal(values, "")
        ids = tf.strings.to_hash_bucket_fast(char_ngrams(values, self.ngram_range, self.tokens), self.num_buckets)
        rows = tf.cast(ids.value_rowids(), tf.int32)
        n_rows = tf.shape(values)[0]
        summed = tf.math.unsorted_segment_sum(tf.gather(self.embeddings, ids.flat_values), rows, n_rows)
        counts = tf.cast(ids.row_lengths(), tf.float32)
        vectors = summed / tf.sqrt(tf.maximum(counts, 1.0))[:, None]
        return vectors * tf.cast(observed, vectors.dtype)[:, None], tf.cast(observed, tf.float32)

    def get_config(self):
        return {
            **super().get_config(),
            "num_buckets": self.num_buckets,
            "embedding_dim": self.embedding_dim,
            "ngram_range": list(self.ngram_range),
            "tokens": self.tokens,
        }


@keras.saving.register_keras_serializable(package="keraszoo")
class SequenceTextEncoder(keras.layers.Layer):
    """A free-text column through an LSTM over its characters (Datawig's `LSTMFeaturizer`, unused by its
    SimpleImputer): `TextVectorization` (character split, the training text's characters as vocabulary,
    unseen ones to the OOV index) + `Embedding` + `LSTM`."""

    def __init__(self, vocabulary=(), max_length=64, embedding_dim=16, units=32, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary, self.max_length = [str(v) for v in vocabulary], int(max_length)
        self.embedding_dim, self.units = int(embedding_dim), int(units)
        self.vectorize = keras.layers.TextVectorization(
            standardize="lower", split="character", output_mode="int", output_sequence_length=self.max_length, vocabulary=self.vocabulary or None
        )
        self.embedding = keras.layers.Embedding(len(self.vocabulary) + 2, self.embedding_dim, mask_zero=True)
        self.lstm = keras.layers.LSTM(self.units)

    @property
    def width(self):
        return self.units

    def build(self, input_shape):
        self.embedding.build((None, self.max_length))
        self.lstm.build((None, self.max_length, self.embedding_dim))
        self.built = True

    def call(self, values):
        observed = tf.not_equal(values, "")
        ids = self.vectorize(values)
        vectors = self.lstm(self.embedding(ids), mask=tf.not_equal(ids, 0))
        return vectors * tf.cast(observed, vectors.dtype)[:, None], tf.cast(observed, tf.float32)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "max_length": self.max_length,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
        }
