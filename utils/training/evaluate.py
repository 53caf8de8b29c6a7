"""Evaluation during a run: the codes of a loader (gathered from every rank, in dataset order) and
the retrieval metrics of the test queries against the database, plus the validation split's."""
import time

import numpy as np
import paddle
from tqdm import tqdm

from utils.encoding import encode as encode_batch
from utils.evaluation.code_health import code_statistics, codes_collapsed
from utils.evaluation.metrics import mean_average_precision, precision_within_radius
from utils.errors import Interrupted
from utils.runtime.distributed import in_dataset_order
from utils.training.interrupt import stop_requested


def topk_label(topk):
    return "all" if topk in (None, -1) else str(topk)


class NetworkFeatures:
    """A network in eval mode as a utils.encoding.FeatureEncoder: its pre-sign output z, as numpy."""

    def __init__(self, model):
        self.model = model
        self.bit = getattr(model, "bit", None)

    def features(self, images):
        return self.model(images).numpy()


@paddle.no_grad()
def encode(model, loader, desc="encode", show_progress=True, comm=None):
    """Codes (+-1 int8) and labels of every item, in dataset order (gathered from all ranks)."""
    was_training = model.training
    model.eval()
    network = NetworkFeatures(model)
    codes, labels, indices = [], [], []
    for images, batch_labels, batch_indices in tqdm(loader, desc=desc, leave=False,
                                                    disable=None if show_progress else True):
        if (comm is None or not comm.active) and stop_requested() is not None:  # ranks stop at training steps
            raise Interrupted("interrupted during evaluation", stop_requested())
        codes.append(encode_batch(network, images).codes)
        labels.append(batch_labels.numpy())
        indices.append(batch_indices.numpy())
    if was_training:
        model.train()
    codes, labels, indices = np.concatenate(codes), np.concatenate(labels), np.concatenate(indices)
    if comm is None or not comm.active:
        return codes, labels
    codes, labels = in_dataset_order(comm, indices, codes.astype(np.int32), labels)
    return codes.astype(np.int8), labels


def retrieval(model, query_loader, db_loader, what, topk, comm=None, show_progress=True):
    """(mAP@topk, precision within Hamming radius 2, (query codes, db codes, query labels, db labels))."""
    q_codes, q_labels = encode(model, query_loader, f"encode {what} queries", show_progress, comm)
    db_codes, db_labels = encode(model, db_loader, f"encode {what} database", show_progress, comm)
    return (mean_average_precision(q_codes, db_codes, q_labels, db_labels, topk=topk),
            precision_within_radius(q_codes, db_codes, q_labels, db_labels, radius=2),
            (q_codes, db_codes, q_labels, db_labels))


def evaluate(model, data, topk, bit, comm=None, show_progress=True):
    """Query-set metrics and code health, plus the validation mAP when a validation split picks the
    best epoch ("select" is what model selection compares). "test_codes" feed the optional plots."""
    start = time.time()
    result = dict(zip(("map", "precision_r2", "test_codes"),
                      retrieval(model, data.query_loader, data.db_loader, "test", topk, comm, show_progress)))
    result["codes"] = code_statistics(result["test_codes"][0])  # of the queries: collapse shows here first
    result["collapsed"] = codes_collapsed(result["codes"], bit, data.num_classes)
    result["select"] = result["map"]
    if data.val_loaders is not None:
        result["val_map"] = retrieval(model, *data.val_loaders, "validation", topk, comm, show_progress)[0]
        result["select"] = result["val_map"]
    result["seconds"] = time.time() - start
    return result


def eval_line(tag, result, topk):
    """The log line of one evaluation."""
    label = topk_label(topk)
    val = f"  validation mAP@{label}: {result['val_map']:.4f}" if "val_map" in result else ""
    codes = result["codes"]
    n = round(codes["distinct"] / codes["distinct_share"])
    return (f"[{tag}] mAP@{label}: {result['map']:.4f}  precision@r2: {result['precision_r2']:.4f}{val}  "
            f"codes: {codes['distinct']}/{n} distinct, {codes['constant_bits']} constant bits, "
            f"bit balance {codes['bit_balance']:.2f}  ({result['seconds']:.1f}s)")
