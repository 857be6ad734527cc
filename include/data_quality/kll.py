"""KLL sketches as statistics.json stores them: compactor levels, each item weighing 2^level.

datasketches' C++ serialization (kll_sketch<double>::serialize) is parsed directly:
  byte 0 preamble ints (2: empty or one item, 5: full), 1 serial version (1 full/empty, 2 one item),
  2 family (15), 3 flags (bit 0 empty, bit 2 single item), 4-5 k, 6 m, 7 unused;
  full sketches then hold n (uint64 @8), min_k (uint16 @16), num_levels (uint8 @18), the first
  num_levels level offsets (uint32 @20; the last offset is implied), min, max, and the retained
  items from level 0 upwards.
"""

from __future__ import annotations

import struct

import numpy as np

SKETCH_K = 2048
# Model Monitor reports Deequ's KLL parameters (shrinking factor c, sketch size k).
SKETCH_PARAMETERS = {"c": 0.64, "k": 2048.0}
BUCKET_COUNT = 10
_FAMILY_KLL = 15
_FLAG_EMPTY, _FLAG_SINGLE_ITEM = 1, 4


def new_sketch():
    from datasketches import kll_doubles_sketch

    return kll_doubles_sketch(SKETCH_K)


def sketch_levels(sketch) -> list[list[float]]:
    """The sketch's compactor levels (level 0 first), from its serialized bytes."""
    blob = sketch.serialize()
    preamble_ints, _version, family, flags = blob[0], blob[1], blob[2], blob[3]
    if family != _FAMILY_KLL:
        raise ValueError(f"not a KLL sketch (family {family})")
    if flags & _FLAG_EMPTY:
        return []
    if flags & _FLAG_SINGLE_ITEM:
        return [[struct.unpack_from("<d", blob, 8)[0]]]
    if preamble_ints != 5:
        raise ValueError(f"unexpected KLL preamble of {preamble_ints} ints")
    num_levels = blob[18]
    offsets = list(struct.unpack_from(f"<{num_levels}I", blob, 20))
    items_at = 20 + 4 * num_levels + 16  # past the offsets, min and max
    items = np.frombuffer(blob, dtype="<f8", offset=items_at)
    offsets.append(offsets[0] + len(items))
    return [items[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]].tolist() for i in range(num_levels)]


class WeightedCdf:
    """The step CDF of weighted items, as rebuilt from statistics.json's `data` levels."""

    def __init__(self, levels: list[list[float]]):
        values = np.concatenate([np.asarray(level, dtype=float) for level in levels]) if levels else np.empty(0)
        weights = np.concatenate([np.full(len(level), 2.0 ** i) for i, level in enumerate(levels)]) if levels else np.empty(0)
        order = np.argsort(values, kind="stable")
        self.values = values[order]
        self.cumulative = np.cumsum(weights[order])
        self.n = float(self.cumulative[-1]) if len(self.cumulative) else 0.0

    def rank(self, points) -> np.ndarray:
        """Weight of items <= each point (inclusive rank)."""
        at = np.searchsorted(self.values, np.asarray(points, dtype=float), side="right")
        padded = np.concatenate([[0.0], self.cumulative])
        return padded[at]

    def rank_exclusive(self, points) -> np.ndarray:
        at = np.searchsorted(self.values, np.asarray(points, dtype=float), side="left")
        padded = np.concatenate([[0.0], self.cumulative])
        return padded[at]


def equal_width_buckets(cdf: WeightedCdf, minimum: float, maximum: float) -> list[dict]:
    """Deequ's 10 equal-width buckets between min and max; count = rank(upper) - rank(lower).

    As in Deequ's KLLSketch.computeMetricFrom, the lower bound is exclusive except for the first
    bucket and the upper bound inclusive, so every item falls in exactly one bucket.
    """
    width = (maximum - minimum) / BUCKET_COUNT
    lowers = [minimum + width * i for i in range(BUCKET_COUNT)]
    uppers = lowers[1:] + [maximum]
    upper_ranks = cdf.rank(uppers)
    lower_ranks = cdf.rank(lowers)
    lower_ranks[0] = cdf.rank_exclusive([minimum])[0]
    return [{"lower_bound": float(lo), "upper_bound": float(hi), "count": float(up - down)}
            for lo, hi, up, down in zip(lowers, uppers, upper_ranks, lower_ranks)]
