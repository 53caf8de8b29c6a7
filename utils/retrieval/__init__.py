"""Binary codes and exact Hamming search; numpy (and optionally faiss / pymilvus), never paddle.

codes       the three code forms (+-1, 0/1, packed uint8) and the uint64 words distances run on
scan        flat-scan distances, top-k and radius search (functions)
backends/   numpy, faiss, milvus and auto behind one Backend protocol, picked by name
index       HammingIndex: a database of codes over a backend, saved as an index_file

Ordering contract: ranked by Hamming distance, ties to the lower database index, whatever the
path, block size or thread count (docs/architecture.md).
"""
from utils.retrieval.backends import BACKENDS, Backend, backend_names
from utils.retrieval.codes import (bits_to_words, code_bytes, format_code, pack_codes, packed_rows, packed_to_words,
                                   to_bits, unpack_codes)
from utils.retrieval.index import HammingIndex
from utils.retrieval.scan import hamming_distances, hamming_radius, hamming_topk

__all__ = ["BACKENDS", "Backend", "HammingIndex", "backend_names", "bits_to_words", "code_bytes", "format_code",
           "hamming_distances", "hamming_radius", "hamming_topk", "pack_codes", "packed_rows", "packed_to_words",
           "to_bits", "unpack_codes"]
