"""The codes of benchmarks/bench_index_scale.py: uniform random codes, or noisy copies of centres
(random codes or a trained model's codes), packed rows; its docstring says why these parameters."""
import numpy as np


def flip(rng, packed, bits, p, chunk=1 << 20):
    """Each of the first `bits` bits of each row flipped with probability p (in place)."""
    for s in range(0, len(packed), chunk):
        rows = packed[s:s + chunk]
        rows ^= np.packbits(rng.random((len(rows), bits), dtype=np.float32) < p, axis=1)


def centres_for(args, rng, bits):
    if args.real_codes is None:
        return rng.integers(0, 256, (args.classes, (bits + 7) // 8), dtype=np.uint8)
    from utils.retrieval import packed_rows

    return packed_rows(np.load(args.real_codes), bits, args.real_codes)


def make_codes(args, rng, n, bits, kind):
    """(database, top-k queries, radius queries), packed uint8 rows, padding bits zero."""
    nbytes, nq = (bits + 7) // 8, args.queries
    if kind == "uniform":
        db = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
        queries = rng.integers(0, 256, (nq, nbytes), dtype=np.uint8)
        near = db[rng.integers(0, n, nq)].copy()
        for row in near:
            row ^= np.packbits(np.isin(np.arange(bits), rng.choice(bits, rng.integers(0, 4), replace=False)))
    else:
        centres = centres_for(args, rng, bits)
        db = centres[rng.integers(0, len(centres), n)]
        flip(rng, db, bits, args.noise)
        queries = centres[rng.integers(0, len(centres), nq)]
        flip(rng, queries, bits, args.noise)
        near = queries
    if bits % 8:
        for arr in (db, queries, near):
            arr[:, -1] &= np.uint8((0xFF << (8 - bits % 8)) & 0xFF)
    return db, queries, near
