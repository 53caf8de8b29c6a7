"""Evaluation during a run: the codes of a loader (gathered from every rank, in dataset order) and
the retrieval metrics of the test queries against the database, plus the validation split's; when the
query and database lists have no labels, code health alone (bit balance, distinct codes, quantisation
error), which every evaluation reports besides."""
import time

import numpy as np
import paddle
from tqdm import tqdm

from utils.encoding import encode as encode_batch
from utils.evaluation.code_health import code_statistics, codes_collapsed, quantisation_errors
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
    """Codes (+-1 int8), labels and the quantisation error of every item (1 - cos(z, sign z),
    code_health.quantisation_errors), in dataset order (gathered from all ranks)."""
    was_training = model.training
    model.eval()
    network = NetworkFeatures(model)
    codes, labels, indices, errors = [], [], [], []
    for images, batch_labels, batch_indices in tqdm(loader, desc=desc, leave=False,
                                                    disable=None if show_progress else True):
        if (comm is None or not comm.active) and stop_requested() is not None:  # ranks stop at training steps
            raise Interrupted("interrupted during evaluation", stop_requested())
        encoded = encode_batch(network, images)
        codes.append(encoded.codes)
        errors.append(quantisation_errors(encoded.features))
        labels.append(batch_labels.numpy())
        indices.append(batch_indices.numpy())
    if was_training:
        model.train()
    codes, labels, indices, errors = (np.concatenate(codes), np.concatenate(labels), np.concatenate(indices),
                                      np.concatenate(errors))
    if comm is None or not comm.active:
        return codes, labels, errors
    codes, both = in_dataset_order(comm, indices, codes.astype(np.int32), np.hstack([labels, errors[:, None]]))
    return codes.astype(np.int8), both[:, :-1], both[:, -1]


def retrieval(model, query_loader, db_loader, what, topk, comm=None, show_progress=True):
    """(mAP@topk, precision within Hamming radius 2, (query codes, db codes, query labels, db labels),
    the queries' mean quantisation error); mAP and precision are None when the lists have no labels."""
    q_codes, q_labels, q_errors = encode(model, query_loader, f"encode {what} queries", show_progress, comm)
    db_codes, db_labels, _ = encode(model, db_loader, f"encode {what} database", show_progress, comm)
    codes = (q_codes, db_codes, q_labels, db_labels)
    if q_labels.shape[1] == 0:
        return None, None, codes, float(q_errors.mean())
    return (mean_average_precision(q_codes, db_codes, q_labels, db_labels, topk=topk),
            precision_within_radius(q_codes, db_codes, q_labels, db_labels, radius=2), codes, float(q_errors.mean()))


def evaluate(model, data, topk, bit, comm=None, show_progress=True):
    """Query-set metrics and code health, plus the validation mAP when a validation split picks the
    best epoch ("select" is what model selection compares; the engine sets it without labels).
    "test_codes" feed the optional plots. Without labels in the query/database lists "map" and
    "precision_r2" are None and the code health is the result."""
    start = time.time()
    result = dict(zip(("map", "precision_r2", "test_codes", "quantisation_error"),
                      retrieval(model, data.query_loader, data.db_loader, "test", topk, comm, show_progress)))
    result["codes"] = code_statistics(result["test_codes"][0])  # of the queries: collapse shows here first
    result["codes"]["quantisation_error"] = result.pop("quantisation_error")
    result["collapsed"] = codes_collapsed(result["codes"], bit, data.num_classes)
    result["select"] = result["map"]
    if data.val_loaders is not None:
        result["val_map"] = retrieval(model, *data.val_loaders, "validation", topk, comm, show_progress)[0]
        result["select"] = result["val_map"]
    result["seconds"] = time.time() - start
    return result


def health_text(codes):
    """The code health of one evaluation, as the log and the last line of an unlabelled run print it."""
    n = round(codes["distinct"] / codes["distinct_share"])
    return (f"codes: {codes['distinct']}/{n} distinct, {codes['constant_bits']} constant bits, "
            f"bit balance {codes['bit_balance']:.2f}, quantisation error {codes['quantisation_error']:.3f}")


def eval_line(tag, result, topk):
    """The log line of one evaluation."""
    label = topk_label(topk)
    if result["map"] is None:
        return f"[{tag}] no labels to compute mAP: {health_text(result['codes'])}  ({result['seconds']:.1f}s)"
    val = f"  validation mAP@{label}: {result['val_map']:.4f}" if "val_map" in result else ""
    return (f"[{tag}] mAP@{label}: {result['map']:.4f}  precision@r2: {result['precision_r2']:.4f}{val}  "
            f"{health_text(result['codes'])}  ({result['seconds']:.1f}s)")


def save_plots(codes, what, folder, bit, logger):
    """--plots: the precision-recall curve and precision@N of the `what` model's codes, into the run's folder."""
    from utils.evaluation.plots import save_retrieval_plots

    q_codes, db_codes, q_labels, db_labels = codes
    paths, _, at_n = save_retrieval_plots(q_codes, db_codes, q_labels, db_labels, folder, bit)
    logger.info(f"plots of the {what} model: {', '.join(paths)}; precision@N "
                + " ".join(f"{n}:{p:.3f}" for n, p in at_n.items()))
