"""How much a lower precision changes retrieval: mAP of the fp32 and the low-precision encoder on
the same query and database lists, and the mean Hamming distance between their codes of the same
images (quantize.py and benchmarks report both)."""
import numpy as np

from utils.config.files import dataset_lists
from utils.evaluation.metrics import mean_average_precision


def encoder_quality(encoders, cfg, batch_size=32):
    """{name: {"map": mAP@topK, "hamming_to_first": mean Hamming distance per image (query and
    database images) to the first encoder's codes}} for a dict of encoders of one model."""
    from utils.inference.encoders import encode_list

    lists, d = dataset_lists(cfg), cfg["dataset"]
    topk = None if d["topk"] in (None, -1) else d["topk"]
    result, first = {}, None
    for name, encoder in encoders.items():
        query, query_set = encode_list(encoder, lists["test"], d["data_path"], batch_size, desc=f"{name} query")
        db, db_set = encode_list(encoder, lists["database"], d["data_path"], batch_size, desc=f"{name} database")
        codes = np.concatenate([query, db])
        first = codes if first is None else first
        result[name] = {"map": float(mean_average_precision(query, db, query_set.labels, db_set.labels, topk)),
                        "hamming_to_first": float((codes != first).sum(axis=1).mean())}
    return result
