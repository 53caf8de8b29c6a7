"""The numbers that pick a search path: memory budgets and the cost model of each backend.

They change speed and memory only, never an answer (every path is exact); the code reads them
from this module at call time, so the tests force every path by setting them here.
"""

# Budget, per worker thread, for the largest [block, n_db] array a flat scan keeps (an int64
# ranking); the other per-block arrays add about 1.3x this. 32 MiB stays under glibc's largest
# mmap threshold, so blocks reuse freed memory instead of faulting fresh pages in every time.
BLOCK_BYTES = 32 << 20

# the numpy top-k bucket table is used when its expected probes, k * 2**bit / n,
# stay under n / TABLE_PROBE_FACTOR (a flat scan costs n per query)
TABLE_PROBE_FACTOR = 4
# Hashing for radius search is used when (probes + candidates) * cost < n, the
# cost being that of one candidate relative to one item of a flat scan, measured
# at 1M 64-bit codes (bench_index.py): numpy ~25 (a candidate ~30 ns, a scanned
# item ~1.2 ns), faiss IndexBinaryMultiHash ~1000 (~400 ns a candidate against
# a 0.3-0.5 ns scan): worth it at flips = 0 (radius < 4 at 64 bits), not beyond.
NUMPY_HASH_COST = 25
FAISS_HASH_COST = 1000
# most (query, candidate) pairs the numpy hashing paths hold at once
GATHER_ITEMS = 1 << 22
# most candidates numpy's radius hashing verifies in one block of queries: its per-block arrays
# (int64 keys, distances, positions) then stay near the caches. Measured on 10M clustered 64-bit
# codes (AMD EPYC Zen 3, radius 3): 1.1 ms a query in batches of 1,000 at 1 << 22 against 0.48 at
# 32 queries; 0.61-0.67 at 1 << 17 .. 1 << 19 (flat there), so a batch costs what its first
# queries cost and auto's timing on them holds for the batch.
HASH_GATHER_ITEMS = 1 << 19
# widest chunk of a code that gets a bucket table (2**16 buckets)
CHUNK_BITS = 16

# faiss' counting search holds (bits + 1) * k int64 per query: used while that stays under this
FAISS_COUNTING_BYTES = 8 << 20  # per query
FAISS_BATCH_BYTES = 64 << 20  # per search call into faiss

# The auto backend times its flat-scan top-k candidates on the first search of at least this many
# queries (fewer for big databases: about TIMING_ITEMS query x item pairs per candidate), on
# databases of at least TIMING_MIN_ITEMS codes (below that every path takes microseconds)
TIMING_QUERIES = 32
# a path that is not a scan is timed on up to this many of the batch's queries: its fixed cost per
# call shrinks per query as the batch grows (mih at 10M clustered 64-bit codes, radius 2, AMD EPYC
# Zen 3: 0.37 ms a query on 32 queries, 0.18 on 128-1,000), and 32 made it look no faster than
# numpy's hashing where it was 3-4x faster on the whole batch
TIMING_HASH_QUERIES = 256
TIMING_ITEMS = 32 << 20
TIMING_MIN_ITEMS = 50_000
# and runs each path for at least this long a round (the fastest call counts)
TIMING_MIN_SECONDS = 0.02

# Multi-index hashing (backends/mih.py): the widest substring (a dense table of 2**width offsets),
# the cost of one candidate and of one probe in items of a flat scan (a query whose stages would
# cost more than scanning the database is scanned instead: numpy gathers a candidate in ~30-60 ns,
# numpy's flat scan ~1.5-3 ns an item), queries per block, and how many added items may wait
# outside the tables (scanned for every query) before they are merged in.
MIH_MAX_WIDTH = 24
MIH_CANDIDATE_COST = 40
MIH_PROBE_COST = 4
MIH_BLOCK_QUERIES = 512
MIH_PENDING_MIN = 4096
MIH_PENDING_FRACTION = 1 / 2048
