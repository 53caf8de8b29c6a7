"""utils.encoding: the one sign rule and the one encoding step, against values written out by hand."""
import numpy as np

from utils.encoding import Encoded, concatenate, encode, sign_codes


def test_sign_rule_by_hand():
    """+1 where a feature is >= 0 (zero included, as the exported graphs always did), -1 below, NaN -1."""
    features = np.array([[-0.5, 0.0, 0.3, -0.0], [np.nan, 1e-30, -1e-30, 7.0]], np.float32)
    expected = np.array([[-1, 1, 1, 1], [-1, 1, -1, 1]], np.int8)
    codes = sign_codes(features)
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(sign_codes(expected), expected)  # +-1 codes (an older export's output): unchanged


class _Linear:
    """features = images @ w, a stand-in encoder."""

    bit = 3

    def __init__(self):
        self.w = np.array([[1.0, -1.0, 0.0], [0.5, 2.0, -1.0]], np.float32)

    def features(self, images):
        return images @ self.w


def test_encode_keeps_the_features_beside_their_codes():
    images = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, -2.0]], np.float32)
    out = encode(_Linear(), images)
    np.testing.assert_allclose(out.features, [[1.0, -1.0, 0.0], [-0.5, 3.0, -1.0], [-1.0, -4.0, 2.0]])
    np.testing.assert_array_equal(out.codes, [[1, -1, 1], [-1, 1, -1], [-1, -1, 1]])
    assert out.features.dtype == np.float32 and len(out) == 3


def test_concatenate_in_order_and_empty():
    a = Encoded(np.ones((2, 4), np.float32), np.ones((2, 4), np.int8))
    b = Encoded(-np.ones((1, 4), np.float32), -np.ones((1, 4), np.int8))
    both = concatenate([a, b], 4)
    np.testing.assert_array_equal(both.codes[:, 0], [1, 1, -1])
    empty = concatenate([], 4)
    assert empty.codes.shape == (0, 4) and empty.features.shape == (0, 4)
