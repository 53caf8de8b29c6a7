"""DPN: Deep Polarized Network (Fan, Ng, Ju, Zhang, Chan, IJCAI 2020)."""
import paddle

from utils.losses.base import HashLoss, check_int, check_non_negative, check_positive
from utils.losses.orthohash import bernoulli_codes


class DPNLoss(HashLoss):
    """The polarisation loss (the paper's bit-wise hinge-like loss, Sec. 3): each output v_k is
    pushed to the side of its class's target bit t_k and at least m away from zero,
        l(v, t) = sum_k max(m - v_k t_k, 0),
    with one random target code a class (the paper's random assignment: Bernoulli(0.5) bits, seeded);
    the paper shows this point-wise loss bounds the pairwise Hamming-distance loss from above, so
    no pairs are formed. Multi-label (NUS-WIDE in the paper): the loss against every label's
    target code, summed, sum_c y_c l(v, t_c); where two labels' targets disagree on a bit the two
    hinges hold v_k inside [-m, m] (the paper's third, undecided state). reg_weight adds
    reg_weight * mean(v^2) (the authors' `reg`; 0 in kamwoh/DPN's main.py, 0.1 in FIRe's re-run).
    Defaults m = 1 (kamwoh/DPN main.py). Checked against the authors' code (kamwoh/DPN
    scripts/train_hashing.py calculate_loss; CISiPLab/cisip-FIRe functions/loss/dpn.py): same hinge,
    sum over bits, sum over the labels, mean over the batch; their optional classification term
    (`ce`, off by default) is left out. v is the linear head's raw output (no tanh), the code sign(v).
    Per-item loss: correct per rank. Hand-computed cases: tests/utils/losses/test_orthohash_dpn.py.
    """

    NAME = "dpn"
    DEFAULTS = {
        "margin": 1.0,       # m: how far from zero each output is pushed
        "reg_weight": 0.0,   # weight of mean(v^2)
        "target_seed": 0,    # the Bernoulli target codes
    }

    def __init__(self, num_train, bit, num_classes, margin=1.0, reg_weight=0.0, target_seed=0, comm=None):
        super().__init__(comm)
        self.margin, self.reg_weight = margin, reg_weight
        self.register_buffer("targets", paddle.to_tensor(bernoulli_codes(num_classes, bit, target_seed)))

    @classmethod
    def check_options(cls, options):
        check_positive(options, "margin")
        check_non_negative(options, "reg_weight")
        check_int(options, "target_seed", 0)

    def forward(self, v, labels, indices):
        targets = self.targets.astype(v.dtype)
        # [n, C, K]: the hinge of every output bit against every class's target bit
        hinge = paddle.clip(self.margin - v.unsqueeze(1) * targets.unsqueeze(0), min=0.0).sum(axis=2)
        loss = (hinge * labels.astype(v.dtype)).sum(axis=1).mean()
        if self.reg_weight > 0:
            loss = loss + self.reg_weight * (v * v).mean()
        return self.share(loss)
