import pytest

from utils.scheduler import ScaledStepDecay, scaled_lr


def test_recipe_values_per_epoch():
    # Paddle reproduction: lr 1e-3 * (global batch / 64), x0.5 every 50 epochs, 150 epochs, 2 x 64.
    sched = ScaledStepDecay(1e-3, global_batch=128, base_batch=64, step_size=50, gamma=0.5)
    values = []
    for _ in range(150):
        values.append(sched.get_lr())
        sched.step()
    for epoch, lr in enumerate(values):
        assert lr == pytest.approx(2e-3 * 0.5 ** (epoch // 50)), epoch
    assert values[49] == pytest.approx(2e-3) and values[50] == pytest.approx(1e-3) and values[149] == pytest.approx(5e-4)


@pytest.mark.parametrize("global_batch,expected", [(64, 1e-3), (32, 5e-4), (256, 4e-3)])
def test_linear_scaling(global_batch, expected):
    assert scaled_lr(1e-3, global_batch, 64) == pytest.approx(expected)


def test_state_round_trip():
    a = ScaledStepDecay(0.01, 64, step_size=3, gamma=0.1)
    for _ in range(7):
        a.step()
    b = ScaledStepDecay(0.01, 64, step_size=3, gamma=0.1)
    b.set_state_dict(a.state_dict())
    assert b.last_epoch == a.last_epoch and b.get_lr() == pytest.approx(a.get_lr()) == pytest.approx(0.01 * 0.01)
