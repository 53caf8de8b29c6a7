import paddle
import pytest

from utils.training.optimizer import scaled_lr, step_decay


def test_recipe_values_per_epoch():
    # Paddle reproduction: lr 1e-3 * (global batch / 64), x0.5 every 50 epochs, 150 epochs, 2 x 64.
    sched = step_decay(1e-3, global_batch=128, base_batch=64, step_size=50, gamma=0.5)
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
    a = step_decay(0.01, 64, step_size=3, gamma=0.1)
    for _ in range(7):
        a.step()
    b = step_decay(0.01, 64, step_size=3, gamma=0.1)
    b.set_state_dict(a.state_dict())
    assert b.last_epoch == a.last_epoch and b.get_lr() == pytest.approx(a.get_lr()) == pytest.approx(0.01 * 0.01)


def test_the_schedule_is_paddles_step_decay():
    """Not a hand-written twin: paddle.optimizer.lr.StepDecay at the scaled lr (its state is what old
    checkpoints hold: last_epoch, last_lr)."""
    sched = step_decay(1e-3, global_batch=128)
    assert type(sched) is paddle.optimizer.lr.StepDecay and set(sched.state_dict()) == {"last_epoch", "last_lr"}
