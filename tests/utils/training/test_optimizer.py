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


def _schedule(overrides, epochs):
    from utils.config import build_config
    from utils.training.optimizer import build_scheduler

    cfg = build_config(None, {"epoch": epochs, "batch_size": 32}, ["train.base_batch=64", "train.lr=0.08"] + overrides)
    return build_scheduler(cfg["train"], 32)


def _values(sched, epochs):
    """The lr of each epoch as the optimizer reads it (last_lr; paddle's get_lr() computes the next
    value, recursively for the cosine)."""
    values = []
    for _ in range(epochs):
        values.append(sched.last_lr)
        sched.step()
    return values


def test_cosine_with_warmup_per_epoch():
    """PaddleClas's Cosine + warmup_epoch, per epoch: lr * e / W during the W warm-up epochs, then
    lr * (1 + cos(pi * (e - W) / (E - W))) / 2 (lr = 0.08 x 32 / 64 = 0.04)."""
    import math

    values = _values(_schedule(["train.lr_schedule=cosine", "train.warmup_epochs=5"], 100), 100)
    for epoch, lr in enumerate(values):
        hand = 0.04 * epoch / 5 if epoch < 5 else 0.04 * (1 + math.cos(math.pi * (epoch - 5) / 95)) / 2
        assert lr == pytest.approx(hand, abs=1e-9), epoch
    plain = _values(_schedule(["train.lr_schedule=cosine"], 10), 10)
    assert plain[0] == pytest.approx(0.04) and plain[5] == pytest.approx(0.02)


def test_step_schedule_can_warm_up_and_its_state_survives_the_checkpoint_pickle_check(tmp_path):
    from utils.storage.weights import check_pickle

    sched = _schedule(["train.warmup_epochs=2", "train.lr_decay_every=3", "train.lr_decay_gamma=0.5"], 10)
    values = _values(sched, 8)
    assert values == pytest.approx([0.0, 0.02, 0.04, 0.04, 0.04, 0.02, 0.02, 0.02])
    path = str(tmp_path / "s.pdopt")
    paddle.save({"scheduler": sched.state_dict()}, path)
    check_pickle(path)  # nested LinearWarmup state: plain numbers and dicts
    again = _schedule(["train.warmup_epochs=2", "train.lr_decay_every=3", "train.lr_decay_gamma=0.5"], 10)
    again.set_state_dict(paddle.load(path)["scheduler"])
    assert again.last_lr == pytest.approx(sched.last_lr) and _values(again, 2) == pytest.approx(_values(sched, 2))


@pytest.mark.parametrize("override,message", [
    ("train.lr_schedule=linear", "train.lr_schedule: must be step or cosine"),
    ("train.warmup_epochs=-1", "train.warmup_epochs: must be an integer >= 0 and below train.epochs"),
    ("train.warmup_epochs=10", "train.warmup_epochs: must be an integer >= 0 and below train.epochs"),
])
def test_bad_schedule_settings_are_one_line_errors(override, message):
    from utils.config import build_config
    from utils.errors import UserError

    with pytest.raises(UserError, match=message):
        build_config(None, {"epoch": 10}, [override])
