"""The shallow methods a user can pick like any other: fitted in closed form on a backbone's features
(seconds, no gradient step) instead of trained. utils/training/shallow.py fits them with the numpy fits of
utils/evaluation/baselines.py (BASELINES[FIT]) and writes the result into the head's fc layer, so the
weights, export, predict.py, infer.py and the search service treat the model like a trained one.

A ShallowMethod is a declaration with the parts of a loss the config and the engine read (NAME,
DEFAULTS, MODEL, check_options, check_data); it has no forward: nothing is back-propagated through it.
"""
from utils.losses.base import check_int


class ShallowMethod:
    NAME = None
    FIT = None            # the utils.evaluation.baselines.BASELINES key that fits it
    DEFAULTS = {}
    MODEL = "linear"      # codes = sign(W^T (x - mean)): the linear head's fc holds W and -W^T mean
    MULTI_LABEL = True
    SUPERVISED = False    # fitted on the features alone; labels are never read
    VIEWS = 1
    SHALLOW = True

    @classmethod
    def check_options(cls, options):
        """Raise UserError naming `loss.<key>` for a bad value."""

    @classmethod
    def check_data(cls, options, multi_label, dataset):
        """Any data: labels are not used."""


class LSHMethod(ShallowMethod):
    """Random-projection LSH (Charikar 2002) of the centred features: sign(W^T (x - mean)), W seeded Gaussian."""
    NAME = FIT = "lsh"


class PCAHMethod(ShallowMethod):
    """PCA hashing: sign of the projections on the top-K principal directions of the centred features."""
    NAME = FIT = "pcah"


class ITQMethod(ShallowMethod):
    """ITQ (Gong and Lazebnik, CVPR 2011): PCA to K dimensions, then the rotation that minimises the
    quantisation error ||B - V R||_F^2, by alternating B = sign(V R) and orthogonal Procrustes."""
    NAME = FIT = "itq"
    DEFAULTS = {"iterations": 50}  # alternations of ITQ (the paper's 50)

    @classmethod
    def check_options(cls, options):
        check_int(options, "iterations", 1)


class SpectralHashingMethod(ShallowMethod):
    """Spectral hashing (Weiss, Torralba, Fergus, NIPS 2008): the K one-dimensional eigenfunctions of smallest
    eigenvalue along the principal directions (models/spectral.py)."""
    NAME = FIT = "sh"
    MODEL = "spectral"
