"""Initial fills of missing entries for the flows (emflow.md Sec. 4.1 and 4.2, MCFlow's code).

Training (NumPy, random, seeded): tables draw each missing entry from its column's observed values
(`random_observed_fill`); images give each missing pixel the value of one of its nearest observed pixels,
chosen uniformly in the nearest square ring that has any (`nearest_observed_fill`), as MCFlow's code does.

Imputing new rows (TensorFlow, deterministic, so that `impute` is): tables take each column's training
median (`impute_start` with `fill_values`; Sec. 3.4 names "median imputation for tabular datasets");
images the MEAN of the nearest ring's observed pixels (`ring_mean_fill`), the expectation of the random
training fill; a pixel with no observed pixel in its image takes the training median.
"""
import numpy as np
import tensorflow as tf


def random_observed_fill(x, mask, rng):
    """x [n, D] with each missing entry replaced by a uniform draw among its column's observed values
    (a column with none observed keeps 0)."""
    x = np.array(x, dtype=np.float32, copy=True)
    for j in range(x.shape[1]):
        observed = mask[:, j] > 0
        missing = ~observed
        if missing.any() and observed.any():
            x[missing, j] = rng.choice(x[observed, j], size=int(missing.sum()))
    return x


def nearest_observed_fill(images, mask, rng, chunk=512):
    """images [n, H, W, C] with each missing pixel replaced by one observed pixel of the nearest square
    ring (Chebyshev distance r = 1, 2, ...) that has any, chosen uniformly (reservoir sampling over the
    ring's offsets); per channel. A pixel whose image has no observed pixel keeps 0."""
    out = np.array(images, dtype=np.float32, copy=True)
    for start in range(0, len(out), chunk):
        _fill_chunk(out[start : start + chunk], np.asarray(mask[start : start + chunk]) > 0, rng)
    return out


def _fill_chunk(x, observed, rng):
    n, height, width, channels = x.shape
    todo = ~observed
    padded_x = np.zeros((n, 3 * height, 3 * width, channels), np.float32)
    padded_o = np.zeros((n, 3 * height, 3 * width, channels), bool)
    padded_x[:, height : 2 * height, width : 2 * width] = x
    padded_o[:, height : 2 * height, width : 2 * width] = observed
    for r in range(1, max(height, width)):
        if not todo.any():
            break
        count = np.zeros(x.shape, np.int32)
        chosen = np.zeros(x.shape, np.float32)
        for dy, dx in _ring(r):
            window = (slice(None), slice(height + dy, 2 * height + dy), slice(width + dx, 2 * width + dx))
            candidate = padded_o[window] & todo
            count += candidate
            # reservoir sampling: the k-th candidate replaces the choice with probability 1/k
            take = candidate & (rng.random(x.shape) * np.maximum(count, 1) < 1.0)
            chosen = np.where(take, padded_x[window], chosen)
        found = count > 0
        x[found] = chosen[found]
        todo &= ~found


def _ring(r):
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if max(abs(dy), abs(dx)) == r]


def ring_mean_fill(images, observed, fallback):
    """images [B, H, W, C] (graph mode) with each missing pixel replaced by the mean of the observed pixels
    in the nearest square ring around it that has any; `fallback` [H, W, C] where its image has none."""
    height, width = images.shape[1], images.shape[2]
    values = images * observed
    filled = tf.zeros_like(images)
    done = observed
    inner_sum, inner_count = values, observed  # the square of radius 0: the pixel itself
    for r in range(1, max(height, width)):
        square_sum, square_count = _box_sum(values, r), _box_sum(observed, r)
        ring_sum, ring_count = square_sum - inner_sum, square_count - inner_count
        new = (1.0 - done) * tf.cast(ring_count > 0.5, images.dtype)
        filled = filled + new * ring_sum / tf.maximum(ring_count, 1.0)
        done = done + new
        inner_sum, inner_count = square_sum, square_count
    filled = filled + (1.0 - done) * fallback[None]
    return tf.where(observed > 0, images, filled)


def _box_sum(a, r):
    """Sum of `a` [B, H, W, C] over the (2r + 1)^2 square centred on each pixel (zeros outside), from an
    integral image: four slices, whatever r."""
    height, width = a.shape[1], a.shape[2]
    padded = tf.pad(a, [[0, 0], [r + 1, r], [r + 1, r], [0, 0]])
    integral = tf.cumsum(tf.cumsum(padded, axis=1), axis=2)
    size = 2 * r + 1
    bottom_right = integral[:, size : size + height, size : size + width]
    top_right = integral[:, :height, size : size + width]
    bottom_left = integral[:, size : size + height, :width]
    top_left = integral[:, :height, :width]
    return bottom_right - top_right - bottom_left + top_left
