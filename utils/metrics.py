"""Old import path, kept for users' scripts: `utils.metrics.mean_average_precision` and the other
metrics now live in utils.evaluation.metrics (code_statistics / codes_collapsed in
utils.evaluation.code_health)."""
from utils.evaluation.code_health import code_statistics, codes_collapsed
from utils.evaluation.metrics import (mean_average_precision, precision_at_n, precision_recall_curve,
                                      precision_within_radius)

__all__ = ["code_statistics", "codes_collapsed", "mean_average_precision", "precision_at_n",
           "precision_recall_curve", "precision_within_radius"]
