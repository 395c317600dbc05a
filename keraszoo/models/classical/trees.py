"""Fitted regression trees as flat node arrays, walked in TensorFlow: the export of MissForest's forests
and of `iterative_select`'s extra trees and gradient boosting."""
import numpy as np
import tensorflow as tf


def flatten_trees(trees, where):
    """Trees as one set of node arrays: a dict of `children`, `feature`, `threshold`, `value`, `roots`
    (each tree's root node; numpy) and `depth` (the deepest leaf's depth).

    `trees` yields (is_leaf, left, right, feature, threshold, value, depth) per tree, node arrays in
    the tree's own numbering. Nodes of all trees are numbered globally: `children` [2 * nodes] holds
    node i's left child at 2i and its right child at 2i + 1; a row goes left when
    ``x[feature] <= threshold``. A leaf is its own child (and reads column 0 against 0, harmlessly),
    so walking `depth` levels from the roots ends every (row, tree) pair on its leaf without testing
    for leaves. `where` names the model in the error for trees too large for int32 indices.
    """
    children, features, thresholds, values, roots = [], [], [], [], []
    offset, depth = 0, 0
    for is_leaf, left, right, feature, threshold, value, tree_depth in trees:
        is_leaf = np.asarray(is_leaf, bool)
        ids = np.arange(is_leaf.size)
        children.append(np.stack([np.where(is_leaf, ids, left), np.where(is_leaf, ids, right)], axis=1) + offset)
        features.append(np.where(is_leaf, 0, feature))
        thresholds.append(np.where(is_leaf, 0.0, threshold))
        values.append(value)
        roots.append(offset)
        offset += is_leaf.size
        depth = max(depth, int(tree_depth))
    if 2 * offset >= 2**31:
        raise NotImplementedError(f"{where}: too many tree nodes to index with int32")
    return {
        "children": np.concatenate(children).ravel().astype(np.int32),
        "feature": np.concatenate(features).astype(np.int32),
        "threshold": np.concatenate(thresholds).astype(np.float64),
        "value": np.concatenate(values).astype(np.float64),
        "roots": np.array(roots, np.int32),
        "depth": depth,
    }


def tf_leaf_values(rows, roots, arrays, float32_inputs):
    """The leaf value [n, trees] (float64) each row of `rows` [n, f] reaches in each tree from `roots`
    [trees] (node ids into `arrays`, tensors of `flatten_trees`' arrays; its `depth` a Python int).

    With `float32_inputs` the rows are rounded to float32 and compared in float64, as scikit-learn's
    decision trees and forests see X; gradient boosting compares the float64 values themselves.
    """
    n, f = tf.shape(rows)[0], tf.shape(rows)[1]
    seen = tf.cast(tf.cast(rows, tf.float32), tf.float64) if float32_inputs else tf.cast(rows, tf.float64)
    seen = tf.reshape(seen, [-1])
    row_start = tf.range(n)[:, None] * f
    node = tf.broadcast_to(roots, [n, tf.size(roots)])
    for _ in range(arrays["depth"]):
        go_right = tf.gather(seen, row_start + tf.gather(arrays["feature"], node)) > tf.gather(arrays["threshold"], node)
        node = tf.gather(arrays["children"], 2 * node + tf.cast(go_right, tf.int32))
    return tf.gather(arrays["value"], node)
