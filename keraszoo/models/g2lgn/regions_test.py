import numpy as np
import tensorflow as tf

from keraszoo.models.g2lgn import regions


def test_table_regions_are_equal_contiguous_blocks_covering_every_column():
    candidates, local_shape = regions.table_regions(10, 4)
    assert local_shape == (3,)
    np.testing.assert_array_equal(candidates, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [7, 8, 9]])  # the last block ends at the border
    assert regions.table_regions(3, 8)[0].shape == (3, 1)  # never more blocks than columns


def test_image_regions_are_half_overlapping_patches_of_every_channel():
    candidates, local_shape = regions.image_regions((8, 8, 2), 4)
    assert local_shape == (4, 4, 2) and candidates.shape == (9, 32)  # corners 0, 2, 4 on each axis
    image = np.arange(8 * 8 * 2).reshape(8, 8, 2)
    np.testing.assert_array_equal(image.ravel()[candidates[5]].reshape(4, 4, 2), image[2:6, 4:8])  # corner (2, 4)
    covered = np.zeros(8 * 8 * 2, bool)
    covered[candidates.ravel()] = True
    assert covered.all()
    odd, _ = regions.image_regions((7, 7, 1), 4)  # corners 0, 2, 3: the last patch touches the border
    assert odd.shape == (9, 16) and odd.max() == 48


def test_the_region_with_the_most_missing_entries_is_selected_per_example():
    candidates, local_shape = regions.table_regions(6, 3)
    mask = np.ones((3, 6), np.float32)
    mask[0, [1, 2]] = 0  # one missing in block 0 and one in block 1: a tie goes to the first
    mask[1, [4, 5]] = 0
    chosen = regions.select_regions(tf.constant(candidates), tf.constant(mask)).numpy()
    np.testing.assert_array_equal(chosen, [[0, 1], [4, 5], [0, 1]])  # row 2 has none missing: the first block
    mask[0, 3] = 0
    chosen = regions.select_regions(tf.constant(candidates), tf.constant(mask)).numpy()
    np.testing.assert_array_equal(chosen[0], [2, 3])

def test_gather_and_scatter_put_a_region_back_where_it_came_from():
    candidates, local_shape = regions.image_regions((4, 4, 1), 2)
    x = tf.constant(np.random.default_rng(0).random((2, 4, 4, 1)), tf.float32)
    indices = tf.gather(candidates, [0, 8])
    local = regions.gather_region(x, indices, local_shape)
    assert local.shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(local[1].numpy(), x[1, 2:4, 2:4].numpy())
    np.testing.assert_array_equal(regions.scatter_region(x, indices, local).numpy(), x.numpy())
    replaced = regions.scatter_region(x, indices, tf.ones_like(local)).numpy()
    assert (replaced[0, :2, :2] == 1).all() and (replaced[1, 2:, 2:] == 1).all()
    np.testing.assert_array_equal(replaced[0, 2:], x[0, 2:].numpy())
    indicator = regions.region_indicator(x, indices).numpy()
    assert indicator.sum() == 8 and indicator[1, 2:, 2:].all()
    values = tf.Variable(tf.zeros_like(local))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(regions.scatter_region(x, indices, values) * 3.0)
    np.testing.assert_array_equal(tape.gradient(total, values).numpy(), np.full(local.shape, 3.0))
