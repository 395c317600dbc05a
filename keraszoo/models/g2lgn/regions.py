"""f_search (g2lgn.md eq. 4): candidate local regions, the choice of one per example, and putting it back.

A region is a fixed set of positions of the flattened example, so the same three operations serve
tables and images:

* tables ([D]): the columns split into `partitions` contiguous blocks of equal width ceil(D / P),
  the last block aligned to the end (it may overlap the one before); the local example is [width];
* images ([H, W, C]): square patches of side `patch_size` (all channels), their corners on a grid of
  stride ``patch_size // 2`` with the last row and column of corners aligned to the border, so the
  candidates overlap by half and cover the image; the local example is [patch, patch, C];
* no search (the ablation "w/o f_search"): one region, the whole example.

`select_regions` picks, per example, the candidate with the most missing entries (the "densest
missing area"; ties go to the first candidate).
"""
import math

import numpy as np
import tensorflow as tf


def table_regions(n_features, partitions):
    """[P, width] flat column indices of `partitions` contiguous column blocks."""
    partitions = max(1, min(int(partitions), int(n_features)))
    width = math.ceil(n_features / partitions)
    starts = [min(i * width, n_features - width) for i in range(partitions)]
    return np.stack([np.arange(s, s + width) for s in starts]).astype(np.int32), (width,)


def _corners(size, patch):
    stride = max(1, patch // 2)
    corners = list(range(0, size - patch + 1, stride))
    if corners[-1] != size - patch:
        corners.append(size - patch)  # the last patch touches the border
    return corners


def image_regions(example_shape, patch_size):
    """[P, patch * patch * C] flat indices of square patches of side `patch_size` (see the module)."""
    height, width, channels = example_shape
    patch = int(min(patch_size, height, width))
    rows, cols, chans = np.meshgrid(np.arange(patch), np.arange(patch), np.arange(channels), indexing="ij")
    regions = []
    for top in _corners(height, patch):
        for left in _corners(width, patch):
            regions.append((((top + rows) * width + (left + cols)) * channels + chans).ravel())
    return np.stack(regions).astype(np.int32), (patch, patch, channels)


def whole_example(example_shape):
    """One region: every position (no search)."""
    n = int(np.prod(example_shape))
    return np.arange(n, dtype=np.int32)[None], tuple(example_shape)


def select_regions(regions, mask):
    """[batch, R] flat indices of each example's candidate with the most missing entries (eq. 4)."""
    flat_missing = 1.0 - tf.reshape(mask, [tf.shape(mask)[0], -1])
    per_region = tf.gather(flat_missing, regions, axis=1)  # [batch, P, R]
    choice = tf.argmax(tf.reduce_sum(per_region, axis=2), axis=1, output_type=tf.int32)
    return tf.gather(regions, choice)


def gather_region(x, indices, local_shape):
    """The selected region of each example, shaped [batch, *local_shape]."""
    flat = tf.reshape(x, [tf.shape(x)[0], -1])
    local = tf.gather(flat, indices, batch_dims=1)
    return tf.reshape(local, tf.concat([tf.shape(x)[:1], local_shape], axis=0))


def scatter_region(x, indices, local):
    """`x` with each example's selected region replaced by `local` (gradients flow to both)."""
    batch = tf.shape(x)[0]
    flat = tf.reshape(x, [batch, -1])
    width = tf.shape(indices)[1]
    rows = tf.repeat(tf.range(batch), width)
    positions = tf.stack([rows, tf.reshape(indices, [-1])], axis=1)
    flat = tf.tensor_scatter_nd_update(flat, positions, tf.reshape(local, [-1]))
    return tf.reshape(flat, tf.shape(x))


def region_indicator(x, indices):
    """1 at each example's selected positions, 0 elsewhere, shaped like `x`."""
    return scatter_region(tf.zeros_like(x), indices, tf.ones(tf.shape(indices), x.dtype))
