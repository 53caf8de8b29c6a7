"""Code health: how much of the code space a model's codes use, and when they have collapsed."""
import numpy as np


def code_statistics(codes):
    """How much of the code space a set of +-1 (or 0/1) codes [n, K] uses: the share of distinct
    codes, the number of bits that never change, and the bit balance (mean over the bits of
    |mean of the bit as +-1|: 0 = every bit fires half the time, 1 = every bit is constant).
    A collapsed network gives one code (or a few) to every image."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty [n, K] array, got shape {codes.shape}")
    signs = np.where(codes > 0, 1.0, -1.0)
    distinct = len(np.unique(signs > 0, axis=0))
    column_mean = signs.mean(axis=0)
    return {"distinct": distinct, "distinct_share": distinct / len(signs),
            "constant_bits": int((np.abs(column_mean) == 1).sum()), "bit_balance": float(np.abs(column_mean).mean())}


def codes_collapsed(stats, bit, num_classes):
    """True when the codes carry (almost) no information: fewer distinct codes than half the
    classes (at least 2), or more than half the bits constant. Codes of a good model can be one
    per class (CSQ's centers), so the bar is relative to the number of classes."""
    n = stats["distinct"] / stats["distinct_share"]
    return stats["distinct"] < max(2.0, min(num_classes, n) / 2) or stats["constant_bits"] > bit / 2


def quantisation_errors(z):
    """Per item, 1 - cos(z, sign(z)) = 1 - ||z||_1 / (sqrt(K) ||z||_2) of the real-valued outputs z [n, K]
    the codes are taken from: 0 when every |z_k| is equal (z is a scaled code), near 1 - sqrt(2 / (pi K))
    ... 1 - 1/sqrt(K) when a few units dominate. Scale-free, so heads with and without tanh compare
    (cisip-FIRe reports the same quantity as its shallow methods' `quan` error). An all-zero row counts 1."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] == 0:
        raise ValueError(f"z must be an [n, K] array, got shape {z.shape}")
    l2 = np.sqrt((z * z).sum(axis=1))
    l1 = np.abs(z).sum(axis=1)
    cos = np.divide(l1, np.sqrt(z.shape[1]) * l2, out=np.zeros_like(l1), where=l2 > 0)
    return 1.0 - cos
