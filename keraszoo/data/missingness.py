"""Simulate missing data: seeded, vectorised mask generators.

Every function returns a ``float32`` mask with the project's convention: ``1`` = OBSERVED,
``0`` = MISSING. ``seed`` is an ``int``, a ``numpy.random.Generator`` (used as is, so successive calls
continue its stream) or ``None`` (fresh OS entropy, not reproducible). No function loops over rows or
pixels in Python.

Tabular mechanisms (``x`` is a complete 2-D array ``[rows, features]``):

* :func:`mcar_mask` -- each entry missing independently with probability ``rate``.
* :func:`mar_mask` -- EMFlow (Ma & Ghosh) supplement section 6.3, eq. (26): the first
  ``floor(0.7 D)`` features are always observed; each remaining feature of row ``i`` is removed
  independently with probability ``sigmoid(sum_{j < floor(0.7 D)} x_ij)`` computed on min-max scaled
  ``x``. Optionally calibrated to a target ``rate`` (see the function). Under MAR a ``rate`` is always
  the removal rate of the LAST features (the last 30%), never of all entries; EMFlow's Table 4 rates
  are in :data:`EMFLOW_TABLE4_MAR_RATES` (:func:`emflow_mar_rate` looks one up by data set name).
* :func:`mnar_mask` -- self-masking: an entry's missing probability is logistic in its own
  standardised value (larger values more often missing), calibrated to an expected overall ``rate``.

Image mechanisms (``x`` is ``[N, H, W]`` or ``[N, H, W, C]``, or just that shape as a tuple), from the
MisConv supplement section 2 (square, trapezoid, noise). A mask is drawn per image over ``H x W`` and
repeated identically over the channels:

* :func:`square_mask` -- one axis-aligned block of side ``round(H*sqrt(f)) x round(W*sqrt(f))``
  (``f = 1/4`` by default: side ``H/2``, exactly a quarter of a 28x28 image) at a uniformly random
  position per image.
* :func:`trapezoid_mask` -- a trapezoid covering exactly ``round(f*H*W)`` pixels (``f = 1/2`` by
  default), with random height, slant, position and orientation per image.
* :func:`noise_mask` -- exactly ``round(f*H*W)`` pixels per image removed uniformly at random
  (``f = 3/4`` by default).

:func:`simulate` dispatches on a mechanism name and :func:`apply_mask` puts NaN at missing entries.
"""
import math
import numbers

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

TABULAR_MECHANISMS = ("mcar", "mar", "mnar")
IMAGE_MECHANISMS = ("square", "trapezoid", "noise")
MECHANISMS = TABULAR_MECHANISMS + IMAGE_MECHANISMS

#: Fraction of each image removed by the image mechanisms when no rate is given (MisConv supplement).
IMAGE_DEFAULT_RATES = {"square": 0.25, "trapezoid": 0.5, "noise": 0.75}

#: EMFlow (Ma & Ghosh), supplement Table 4 ("Information of UCI data sets", column "MAR missing rate"):
#: under their MAR (supplement section 6.3, eq. 26) the fraction of the LAST 30% of features that is
#: removed -- not the fraction of all entries (that is about 0.3 times as much). Keys are lower-case data
#: set names as the table spells them. Eq. (26) literally applied to min-max scaled data cannot give
#: these rates (every probability is >= 0.5; measured on this project's copies: letter 0.98, credit 0.97,
#: wine 0.76), so pass them as ``rate`` to the calibrated form: ``mar_mask(x, rate=emflow_mar_rate(name))``.
EMFLOW_TABLE4_MAR_RATES = {
    "news": 0.35,
    "air": 0.62,
    "letter": 0.57,
    "concrete": 0.50,
    "review": 0.49,
    "credit": 0.30,
    "energy": 0.39,
    "crop": 0.29,
    "song": 0.32,
    "wine": 0.26,
}


def emflow_mar_rate(dataset):
    """EMFlow's MAR missing rate for ``dataset`` (supplement Table 4), for ``mar_mask(x, rate=...)``.

    The rate is the expected removal rate of the LAST ``D - floor(0.7 D)`` features (EMFlow's "last 30%
    of features"); the first ``floor(0.7 D)`` features stay observed, so the overall missing rate is
    ``rate * (D - floor(0.7 D)) / D``. ``dataset`` is a name (case-insensitive: ``"letter"``,
    ``"credit"``, ``"wine"``, ...) or anything with a ``name`` attribute, such as a
    :class:`keraszoo.data.Dataset`. Raises ``ValueError`` naming the known data sets for any other name
    (e.g. ``"wine_sklearn"``: scikit-learn's 178-row wine is not EMFlow's 6497-row Wine Quality).
    """
    name = getattr(dataset, "name", dataset)
    if not isinstance(name, str):
        raise TypeError(f"dataset must be a data set name (str), got {type(name).__name__}")
    key = name.strip().lower()
    if key not in EMFLOW_TABLE4_MAR_RATES:
        raise ValueError(
            f"EMFlow's Table 4 gives no MAR missing rate for data set {name!r}; "
            f"it lists: {', '.join(sorted(EMFLOW_TABLE4_MAR_RATES))}"
        )
    return EMFLOW_TABLE4_MAR_RATES[key]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}")


def _check_rate(rate, what="rate", allow_none=False):
    if rate is None:
        if allow_none:
            return None
        raise ValueError(f"{what} is required: a number in [0, 1)")
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ValueError(f"{what} must be a number in [0, 1), got {rate!r}")
    rate = float(rate)
    if not (0.0 <= rate < 1.0):
        raise ValueError(
            f"{what} must be in [0, 1) (the fraction of entries made missing; 1 would remove everything), got {rate}"
        )
    return rate


def _check_shape(shape):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must not have negative sizes, got {shape}")
    return shape


def _complete_2d(x, where):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D array [rows, features], got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{where}: input is empty (shape {x.shape})")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: x must be complete (finite everywhere) to simulate missingness on it")
    return x


def _solve_offset(logits, rate):
    """The offset ``b`` with ``mean(sigmoid(logits + b)) == rate`` (monotone in b: Brent's method)."""
    lo = -float(np.max(logits)) - 50.0
    hi = -float(np.min(logits)) + 50.0

    def gap(b):
        return float(np.mean(expit(logits + b))) - rate

    return brentq(gap, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=200)


def _minmax_scale(x):
    lo = x.min(axis=0)
    span = x.max(axis=0) - lo
    span[span == 0] = 1.0
    return (x - lo) / span


def _standardize(x):
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std


# --------------------------------------------------------------------------------------------------
# tabular mechanisms
# --------------------------------------------------------------------------------------------------
def mcar_mask(shape, rate, seed=None):
    """Missing completely at random: each entry missing independently with probability ``rate``.

    ``shape`` is any array shape; ``rate`` is in [0, 1). The realised rate is ``rate`` in expectation.
    """
    shape = _check_shape(shape)
    rate = _check_rate(rate)
    return (_rng(seed).random(shape) >= rate).astype(np.float32)


def mar_probabilities(x, rate=None, observed_fraction=0.7, scaling="minmax"):
    """Per-row probability that each of the last features is removed under :func:`mar_mask`.

    Returns ``(p, n_observed)``: ``p`` is a float64 vector ``[rows]`` and ``n_observed`` is
    ``floor(observed_fraction * D)``, the number of leading always-observed features. ``rate=None`` is
    eq. (26) as written; a number is the target mean of ``p``, i.e. the expected removal rate of the
    last ``D - n_observed`` features (not of all entries). See :func:`mar_mask`.
    """
    x = _complete_2d(x, "mar_mask")
    rate = _check_rate(rate, allow_none=True)
    if not (0.0 < observed_fraction < 1.0):
        raise ValueError(f"observed_fraction must be in (0, 1), got {observed_fraction}")
    d = x.shape[1]
    n_obs = int(math.floor(observed_fraction * d))
    if n_obs < 1 or n_obs >= d:
        raise ValueError(
            f"mar_mask needs at least one always-observed and one maskable feature: with {d} feature(s) "
            f"floor({observed_fraction} * {d}) = {n_obs}; use at least 2 features"
        )
    if scaling == "minmax":
        scaled = _minmax_scale(x)
    elif scaling == "standard":
        scaled = _standardize(x)
    elif scaling == "none":
        scaled = x
    else:
        raise ValueError(f"scaling must be 'minmax', 'standard' or 'none', got {scaling!r}")
    logits = scaled[:, :n_obs].sum(axis=1)
    if rate is None:
        return expit(logits), n_obs
    if rate == 0.0:
        return np.zeros(x.shape[0]), n_obs
    return expit(logits + _solve_offset(logits, rate)), n_obs


def mar_mask(x, seed=None, rate=None, observed_fraction=0.7, scaling="minmax"):
    """Missing at random as in EMFlow's supplement, section 6.3, eq. (26).

    With ``D`` features, the first ``floor(0.7 D)`` are always observed. Each of the remaining features
    of row ``i`` is removed independently with probability ``sigmoid(s_i)``, where
    ``s_i = sum_{j < floor(0.7 D)} x_ij`` and ``x`` is min-max scaled per column (constant columns
    scale to 0). That is the paper's exact form and the default (``rate=None``; also what
    ``simulate(x, "mar", rate=None)`` gives).

    The literal form cannot give EMFlow's own rates: with min-max scaled inputs ``s_i >= 0``, so every
    removal probability is at least 0.5, while Table 4 reports 0.26 to 0.62 (measured here with the
    literal form: letter 0.98 against Table 4's 0.57, credit 0.97 against 0.30, wine 0.76 against 0.26).
    ``scaling="standard"`` (z-scores) or ``"none"`` (use ``x`` as given) change the sums but not that.

    ``rate`` (optional, in [0, 1)) is the calibrated form. Under MAR it means the removal rate of the
    LAST ``D - floor(0.7 D)`` features (EMFlow's "last 30%"), NOT the fraction of all entries: the
    overall missing rate is ``rate * (D - floor(0.7 D)) / D``, e.g. ``0.57 * 5 / 16 = 0.18`` on letter.
    A single offset ``b`` is added inside the sigmoid, ``sigmoid(s_i + b)``, with ``b`` solved by a
    bracketing root finder so that the mean probability over rows equals ``rate`` exactly (the realised
    rate varies binomially around it). The dependence on the observed features (the ranking of rows) is
    unchanged. ``rate=0`` observes everything. For EMFlow's setting use
    ``rate=emflow_mar_rate(dataset_name)`` (Table 4, see :data:`EMFLOW_TABLE4_MAR_RATES`).
    """
    p, n_obs = mar_probabilities(x, rate=rate, observed_fraction=observed_fraction, scaling=scaling)
    n, d = np.shape(x)
    mask = np.ones((n, d), dtype=np.float32)
    removed = _rng(seed).random((n, d - n_obs)) < p[:, None]
    mask[:, n_obs:] = (~removed).astype(np.float32)
    return mask


def mnar_probabilities(x, rate, strength=2.0):
    """Entry-wise missing probabilities of :func:`mnar_mask` (float64, shape of ``x``)."""
    x = _complete_2d(x, "mnar_mask")
    rate = _check_rate(rate)
    if not (np.isfinite(strength) and strength >= 0):
        raise ValueError(f"strength must be a finite number >= 0, got {strength}")
    if rate == 0.0:
        return np.zeros_like(x)
    logits = strength * _standardize(x)
    return expit(logits + _solve_offset(logits, rate))


def mnar_mask(x, rate, seed=None, strength=2.0):
    """Missing not at random, self-masking by value.

    Entry ``(i, j)`` is missing with probability ``sigmoid(strength * z_ij + b)`` where ``z_ij`` is
    ``x_ij`` standardised per column (zero mean, unit variance; constant columns give 0), so larger
    values are more often missing. The single offset ``b`` is solved by a bracketing root finder so
    that the mean probability over all entries equals ``rate``: the EXPECTED overall missing rate is
    ``rate`` (the realised one varies binomially around it). ``strength=0`` degenerates to MCAR.
    """
    p = mnar_probabilities(x, rate, strength=strength)
    return (_rng(seed).random(p.shape) >= p).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# image mechanisms
# --------------------------------------------------------------------------------------------------
def _image_dims(x, where):
    """(full_shape, N, H, W) from an image array or its shape."""
    if isinstance(x, tuple) or (isinstance(x, list) and all(isinstance(s, numbers.Integral) for s in x)):
        shape = _check_shape(x)
    else:
        shape = np.shape(x)
    if len(shape) not in (3, 4):
        raise ValueError(f"{where}: expected images [N, H, W] or [N, H, W, C], got shape {tuple(shape)}")
    n, h, w = shape[:3]
    return tuple(shape), n, h, w


def _broadcast_channels(mask_nhw, shape):
    mask_nhw = mask_nhw.astype(np.float32, copy=False)
    if len(shape) == 4:
        return np.ascontiguousarray(np.broadcast_to(mask_nhw[..., None], shape))
    return mask_nhw


def _check_fraction(fraction, where):
    fraction = _check_rate(fraction, what=f"{where} fraction")
    return fraction


def square_mask(x, seed=None, fraction=0.25):
    """One random missing block per image (MisConv's "square").

    The block is ``round(H*sqrt(fraction))`` by ``round(W*sqrt(fraction))`` pixels (square for square
    images); with the default ``fraction=1/4`` that is ``H/2 x W/2``: exactly a quarter of the area
    when H and W are even. Its top-left corner is uniform over all positions that keep it inside the
    image, drawn independently per image. ``x`` is the images or their shape.
    """
    shape, n, h, w = _image_dims(x, "square_mask")
    fraction = _check_fraction(fraction, "square_mask")
    bh = int(round(h * math.sqrt(fraction)))
    bw = int(round(w * math.sqrt(fraction)))
    rng = _rng(seed)
    top = rng.integers(0, h - bh + 1, size=n)
    left = rng.integers(0, w - bw + 1, size=n)
    rows = np.arange(h)[None, :, None]
    cols = np.arange(w)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + bh)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + bw)[:, None, None])
    )
    return _broadcast_channels(~inside, shape)


def trapezoid_mask(x, seed=None, fraction=0.5):
    """One random missing trapezoid per image (MisConv's "trapezoid", half of the image by default).

    Construction, per image (all draws independent): the target area is ``A = round(fraction*H*W)``
    pixels. A height ``h`` is drawn uniformly among the integers in ``[h_min, H]``, where
    ``h_min = max(2, ceil(1.2 A / (W - 1)))`` keeps the wider side inside the image. The mean width is
    ``m = A / h``; the two parallel (horizontal) sides get widths ``m (1 - t)`` and ``m (1 + t)`` with a
    slant ``t`` uniform in ``[0.2, min(1, (W - 1)/m - 1)]``, the wider side at the top or bottom with
    equal probability. The trapezoid's rows start at a uniform offset ``r0`` in ``[0, H - h]`` and its
    axis at a uniform column among those that keep the wider side inside. The continuous shape is
    rasterised row by row: row ``k`` gets ``round(F(k+1)) - round(F(k))`` pixels, ``F`` being the
    shape's cumulative area, so the mask covers EXACTLY ``A`` pixels (the price: its slanted edges may
    step back by one pixel here and there). For square images the result is
    transposed with probability 1/2, so the parallel sides are vertical half of the time.

    Needs ``H, W >= 4`` and a fraction small enough for the construction
    (``fraction <= H (W-1) / (1.2 H W)``, about 0.8 for 28x28).
    """
    shape, n, h_img, w_img = _image_dims(x, "trapezoid_mask")
    fraction = _check_fraction(fraction, "trapezoid_mask")
    if h_img < 4 or w_img < 4:
        raise ValueError(f"trapezoid_mask needs images of at least 4x4 pixels, got {h_img}x{w_img}")
    area = int(round(fraction * h_img * w_img))
    if area == 0:
        return _broadcast_channels(np.ones((n, h_img, w_img), dtype=np.float32), shape)
    h_min = max(2, int(math.ceil(1.2 * area / (w_img - 1))))
    if h_min > h_img:
        limit = h_img * (w_img - 1) / (1.2 * h_img * w_img)
        raise ValueError(f"trapezoid_mask: fraction {fraction} is too large for {h_img}x{w_img} images (at most {limit:.3f})")
    rng = _rng(seed)
    height = rng.integers(h_min, h_img + 1, size=n).astype(np.float64)
    mean_w = area / height
    t_max = np.minimum(1.0, (w_img - 1) / mean_w - 1.0)
    t = 0.2 + rng.random(n) * (t_max - 0.2)
    wide_on_top = rng.random(n) < 0.5
    sign = np.where(wide_on_top, -1.0, 1.0)
    top_w = mean_w * (1.0 - sign * t)  # width at the first row of the trapezoid
    bottom_w = 2.0 * mean_w - top_w
    wide = np.maximum(top_w, bottom_w)
    r0 = rng.integers(0, (h_img - height).astype(np.int64) + 1)
    centre = wide / 2.0 + rng.random(n) * (w_img - wide)

    # Cumulative area F(k) at every row boundary of the image, k = 0..H (0 above, A below the shape).
    k = np.clip(np.arange(h_img + 1)[None, :] - r0[:, None], 0, height[:, None])
    cum = top_w[:, None] * k + (bottom_w - top_w)[:, None] * k**2 / (2.0 * height[:, None])
    row_w = np.diff(np.round(cum), axis=1).astype(np.int64)  # [N, H], sums to exactly `area`
    left = np.clip(np.round(centre[:, None] - row_w / 2.0).astype(np.int64), 0, w_img - row_w)
    cols = np.arange(w_img)[None, None, :]
    inside = (cols >= left[:, :, None]) & (cols < (left + row_w)[:, :, None])
    if h_img == w_img:
        flip = rng.random(n) < 0.5
        inside = np.where(flip[:, None, None], inside.transpose(0, 2, 1), inside)
    return _broadcast_channels(~inside, shape)


def noise_mask(x, seed=None, fraction=0.75):
    """Random pixel dropout (MisConv's "noise"): EXACTLY ``round(fraction*H*W)`` pixels removed per
    image, chosen uniformly at random without replacement, independently per image (default 3/4)."""
    shape, n, h, w = _image_dims(x, "noise_mask")
    fraction = _check_fraction(fraction, "noise_mask")
    n_pix = h * w
    k = int(round(fraction * n_pix))
    mask = np.ones((n, n_pix), dtype=np.float32)
    if k > 0 and n > 0:
        keys = _rng(seed).random((n, n_pix))
        idx = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < n_pix else np.argsort(keys, axis=1)
        np.put_along_axis(mask, idx, 0.0, axis=1)
    return _broadcast_channels(mask.reshape(n, h, w), shape)


# --------------------------------------------------------------------------------------------------
# dispatch and application
# --------------------------------------------------------------------------------------------------
def simulate(x, mechanism, rate=None, seed=None, **kwargs):
    """Mask for ``x`` under ``mechanism`` (float32, 1 = observed, same shape as ``x``).

    * ``"mcar"`` -- ``rate`` required; any shape.
    * ``"mar"`` -- 2-D ``x``; ``rate=None`` is EMFlow's exact eq. (26), a number calibrates it so that
      ``rate`` is the removal rate of the last 30% of features, not of all entries (see
      :func:`mar_mask` and :func:`emflow_mar_rate`).
    * ``"mnar"`` -- 2-D ``x``; ``rate`` required.
    * ``"square"``, ``"trapezoid"``, ``"noise"`` -- images; ``rate`` is the fraction of each image
      removed, defaulting to 1/4, 1/2 and 3/4 (MisConv).

    ``rate`` must be in [0, 1). Extra keyword arguments go to the mechanism's function.
    """
    if not isinstance(mechanism, str) or mechanism.lower() not in MECHANISMS:
        raise ValueError(f"unknown missingness mechanism {mechanism!r}; valid ones: {', '.join(MECHANISMS)}")
    mechanism = mechanism.lower()
    if mechanism == "mcar":
        return mcar_mask(np.shape(x), _check_rate(rate, "rate for 'mcar'"), seed=seed, **kwargs)
    if mechanism == "mar":
        return mar_mask(x, seed=seed, rate=rate, **kwargs)
    if mechanism == "mnar":
        return mnar_mask(x, _check_rate(rate, "rate for 'mnar'"), seed=seed, **kwargs)
    fraction = IMAGE_DEFAULT_RATES[mechanism] if rate is None else _check_rate(rate, f"rate for {mechanism!r}")
    fn = {"square": square_mask, "trapezoid": trapezoid_mask, "noise": noise_mask}[mechanism]
    return fn(x, seed=seed, fraction=fraction, **kwargs)


def apply_mask(x, mask):
    """A float copy of ``x`` with NaN at missing entries (``mask == 0``); ``x`` is never modified.

    Floating ``x`` keeps its dtype, anything else becomes float64. ``mask`` must hold only 0 and 1 and
    have ``x``'s shape or broadcast to it (e.g. an ``[N, H, W]`` mask for ``[N, H, W, C]`` images
    needs an explicit trailing axis: ``mask[..., None]``).
    """
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.floating):
        out = np.array(arr, dtype=arr.dtype, copy=True)
    else:
        try:
            out = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"apply_mask: x must be numeric ({err})") from None
    m = np.asarray(mask)
    try:
        m = np.broadcast_to(m, out.shape)
    except ValueError:
        raise ValueError(f"apply_mask: mask of shape {m.shape} does not match x of shape {out.shape}") from None
    if not np.all((m == 0) | (m == 1)):
        raise ValueError("apply_mask: mask must hold only 0 (missing) and 1 (observed)")
    out[m == 0] = np.nan
    return out
