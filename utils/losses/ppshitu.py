"""PP-ShiTu-style binary retrieval features: PaddleClas's GeneralRecognition_PPLCNet_x2_5_binary.

That config (ppcls/configs/GeneralRecognition/GeneralRecognition_PPLCNet_x2_5_binary.yaml) trains a
RecModel: backbone PPLCNet_x2_5_Tanh (the PP-LCNet's fc to the 512-d embedding, then tanh), head
FC (embedding -> classes, XavierNormal weights), loss CELoss with weight 1.0, and retrieves with
`feature_binarize: sign`. Here the embedding fc is the hash layer (K = the embedding size), the
head is models/ppshitu.py, and the codes are sign(z) = sign(tanh(z)).
"""
import paddle

from utils.errors import ConfigError
from utils.losses.base import HashLoss


class PPShiTuLoss(HashLoss):
    """PaddleClas's CELoss (ppcls/loss/celoss.py, CELoss.forward) on the FC head's logits x:
    loss = mean over the batch of -sum_c t_c log softmax(x)_c, the target t being
    - with label smoothing (epsilon in (0, 1)): (1 - epsilon) y + epsilon / C (F.label_smooth of the
      one-hot label, or of the C-wide label vector as it is);
    - otherwise: the class of a single-label image (PaddleClas's integer labels: hard cross-entropy),
      and softmax(y) of a multi-hot label vector y (CELoss's soft-label branch for C-wide labels).
    Multi-label: yes, through that soft-label branch. Per item: correct per rank.
    """

    NAME = "ppshitu"
    MODEL = "ppshitu"
    DEFAULTS = {
        "epsilon": None,  # CELoss label smoothing; the binary config sets none
    }

    def __init__(self, num_train, bit, num_classes, epsilon=None, comm=None):
        super().__init__(comm)
        self.epsilon = epsilon

    @classmethod
    def check_options(cls, options):
        eps = options["epsilon"]
        if eps is not None and not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and 0 < eps < 1):
            raise ConfigError(f"loss.epsilon: must be null (no label smoothing) or in (0, 1), got {eps!r}")

    def forward(self, outputs, labels, indices):
        _, logits = outputs
        labels = labels.astype(logits.dtype)
        if self.epsilon is not None:
            target = (1 - self.epsilon) * labels + self.epsilon / logits.shape[-1]
        else:
            single = labels.sum(axis=1, keepdim=True) == 1
            target = paddle.where(single, labels, paddle.nn.functional.softmax(labels, axis=-1))
        loss = -(target * paddle.nn.functional.log_softmax(logits, axis=-1)).sum(axis=1).mean()
        return self.share(loss)
