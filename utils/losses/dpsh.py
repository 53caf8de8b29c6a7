"""DPSH: Deep Pairwise-Supervised Hashing (Li, Wang, Kang, IJCAI 2016)."""
import paddle

from utils.losses.base import (CodeMemory, HashLoss, binary_codes, check_memory_options, check_non_negative,
                               check_positive, log1p_exp, similarity)

PAPER_TRAINING_IMAGES = 5000  # the paper's CIFAR-10 training set, where eta = 10 was chosen


class DPSHLoss(CodeMemory, HashLoss):
    """Pairwise log-likelihood of the labels given the real-valued outputs u = z, plus the
    quantization term of the paper's relaxed objective (Eq. 3 of the IJCAI paper; the
    likelihood is Eqs. 1-2):
    J = -sum_{s_ij in S} (s_ij theta_ij - log(1 + e^theta_ij)) + eta sum_i ||b_i - u_i||^2,
    theta_ij = 1/2 u_i^T u_j, b_i = sign(u_i). As in the paper's mini-batch algorithm, the
    batch is paired with the latest outputs of every training image (a memory, as HashNet's;
    memory_max_age / memory_warmup_epochs as there).

    Normalisation: the paper's J sums the likelihood over all n^2 pairs but the quantization
    over n images, so per image the quantization weight is eta against a sum over n pairs: its
    meaning changes with the training-set size n. Here the likelihood is the mean over the pairs
    and the quantization is (eta / eta_reference_size) * mean_i ||b_i - u_i||^2, i.e. J / n^2 at
    n = eta_reference_size (5,000, the paper's CIFAR-10 training set, where eta = 10 was set),
    on any data set size. (DeepHash-pytorch weights it 0.1 / K instead: also fixed; the old
    form here, eta / n, was 25x that on 64 training images at 16 bits.)
    Multi-label: yes (s_ij = shared label). Data-parallel: like HashNet (memory written with
    every rank's batch, global pair count).
    """

    NAME = "dpsh"
    DEFAULTS = {
        "eta": 10.0,                      # weight of the quantization term ||b - u||^2 (the paper's)
        "eta_reference_size": PAPER_TRAINING_IMAGES,  # the n at which eta has the paper's meaning
        "memory_max_age": None,           # see HashNet (utils/losses/base.py CodeMemory)
        "memory_warmup_epochs": 0,
    }

    def __init__(self, num_train, bit, num_classes, eta=10.0, eta_reference_size=PAPER_TRAINING_IMAGES,
                 memory_max_age=None, memory_warmup_epochs=0, comm=None):
        super().__init__(comm)
        self.eta, self.eta_reference_size = eta, eta_reference_size
        self.init_memory(num_train, bit, num_classes, memory_max_age, memory_warmup_epochs)

    @classmethod
    def check_options(cls, options):
        check_non_negative(options, "eta")
        check_positive(options, "eta_reference_size")
        check_memory_options(options)

    def forward(self, z, labels, indices):
        self.write_batch(z, labels, indices)
        similar = similarity(labels.astype(z.dtype), self.memory_labels)
        theta = 0.5 * paddle.matmul(z, self.memory_codes, transpose_y=True)
        valid = self.memory_valid()
        likelihood = ((log1p_exp(theta) - similar * theta) * valid).sum()
        pairs = self.global_count(valid.sum() * z.shape[0])
        items = self.global_count(paddle.to_tensor(float(z.shape[0]), dtype=z.dtype))
        quantization = ((z - binary_codes(z)) ** 2).sum() / items
        return likelihood / pairs + self.eta / self.eta_reference_size * quantization
