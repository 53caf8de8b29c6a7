"""DPSH: Deep Pairwise-Supervised Hashing (Li, Wang, Kang, IJCAI 2016)."""
import paddle

from utils.losses.base import CodeMemory, HashLoss, binary_codes, check_non_negative, log1p_exp, similarity


class DPSHLoss(CodeMemory, HashLoss):
    """Pairwise log-likelihood of the labels given the real-valued outputs u = z, plus the
    quantization term of the paper:
    J = -sum_{s_ij in S} (s_ij theta_ij - log(1 + e^theta_ij)) + eta sum_i ||b_i - u_i||^2,
    theta_ij = 1/2 u_i^T u_j, b_i = sign(u_i). As in the paper's mini-batch algorithm, the
    batch is paired with the latest outputs of every training image (a memory, as HashNet's);
    the objective is divided by the number of pairs, which keeps the paper's ratio between
    the two terms for eta = 10 (the paper's value). Multi-label: yes (s_ij = shared label).
    Data-parallel: like HashNet (memory written with every rank's batch, global pair count).
    """

    NAME = "dpsh"
    DEFAULTS = {
        "eta": 10.0,   # weight of the quantization term ||b - u||^2
    }

    def __init__(self, num_train, bit, num_classes, eta=10.0, comm=None):
        super().__init__(comm)
        self.eta = eta
        self.init_memory(num_train, bit, num_classes)

    @classmethod
    def check_options(cls, options):
        check_non_negative(options, "eta")

    def forward(self, z, labels, indices):
        self.write_batch(z, labels, indices)
        similar = similarity(labels.astype(z.dtype), self.memory_labels)
        theta = 0.5 * paddle.matmul(z, self.memory_codes, transpose_y=True)
        valid = self.memory_filled.unsqueeze(0)
        likelihood = ((log1p_exp(theta) - similar * theta) * valid).sum()
        quantization = ((z - binary_codes(z)) ** 2).sum()
        pairs = self.global_count(valid.sum() * z.shape[0])
        return (likelihood + self.eta * quantization) / pairs
