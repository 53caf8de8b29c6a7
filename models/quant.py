"""Fake-quantisation for quantisation-aware training (paddle.quantization.QAT): every Conv2D and
Linear gets 8-bit fake quantisers of its input and weights, with moving-average abs-max scales.

The quanter is Paddle's FakeQuanterWithAbsMaxObserver with one fix: in Paddle 3.3.1 its layer's
zero_points() returns None, and QAT.convert (LinearQuanter) then fails on
paddle.to_tensor(None); the quantisation is symmetric, so the zero point is 0.
"""
import paddle
from paddle.quantization import QuantConfig
from paddle.quantization.quanters import FakeQuanterWithAbsMaxObserver
from paddle.quantization.quanters.abs_max import FakeQuanterWithAbsMaxObserverLayer


class SymmetricAbsMaxQuanterLayer(FakeQuanterWithAbsMaxObserverLayer):
    def zero_points(self):
        return paddle.zeros_like(self.scales())


class SymmetricAbsMaxQuanter(FakeQuanterWithAbsMaxObserver):
    def _get_class(self):
        return SymmetricAbsMaxQuanterLayer


def qat_config(moving_rate=0.9):
    """The QuantConfig of quantize.py --method qat: 8-bit inputs and weights of every Conv2D and Linear."""
    quanter = SymmetricAbsMaxQuanter(moving_rate=moving_rate)
    config = QuantConfig(activation=None, weight=None)
    config.add_type_config([paddle.nn.Conv2D, paddle.nn.Linear], activation=quanter, weight=quanter)
    return config
