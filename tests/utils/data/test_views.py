"""The two-view augmentation (utils/data/views.py): seeded, two different views, each augmentation's numerics."""
import numpy as np
import pytest

from utils.data.views import GRAY_WEIGHTS, TwoViewTransform, color_jitter, grayscale, random_resized_crop
from utils.errors import UserError


def image(seed=0, shape=(20, 30, 3)):
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


def test_two_views_are_seeded_normalised_and_differ():
    t = TwoViewTransform(resize_size=40, crop_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    img = image()
    views = t(img, np.random.default_rng([3, 1, 7]))
    assert views.shape == (2, 3, 32, 32) and views.dtype == np.float32
    np.testing.assert_array_equal(views, t(img, np.random.default_rng([3, 1, 7])))  # same seed, same views
    assert not np.array_equal(views, t(img, np.random.default_rng([3, 2, 7])))  # another epoch, other views
    assert not np.array_equal(views[0], views[1])
    assert views.min() >= (0 - 0.5) / 0.25 - 1e-6 and views.max() <= (1 - 0.5) / 0.25 + 1e-6  # [0, 1] normalised


def test_a_full_scale_crop_of_a_square_image_is_the_resized_image():
    img = image(shape=(16, 16, 3))
    out = random_resized_crop(img, 16, np.random.default_rng(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_array_equal(out, img)


def test_crops_cover_the_area_share_and_ratio_drawn():
    cols, rows = np.meshgrid(np.arange(100), np.arange(100))
    img = np.stack([cols, rows, np.zeros_like(cols)], axis=2).astype(np.uint8)  # each pixel holds its position
    rng = np.random.default_rng(1)
    for _ in range(20):  # half the area, square: a 71 x 71 box somewhere in the image
        out = random_resized_crop(img, 50, rng, scale=(0.5, 0.5), ratio=(1.0, 1.0)).astype(int)
        assert out.shape == (50, 50, 3)
        for channel in (0, 1):
            assert 68 <= out[..., channel].max() - out[..., channel].min() <= 71


def test_grayscale_and_colour_jitter_numerics():
    rgb = np.random.default_rng(2).random((4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(grayscale(rgb)[..., 0], 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2],
                               rtol=1e-6)
    assert GRAY_WEIGHTS.sum() == pytest.approx(1.0)
    # zero strengths change nothing (hue 0 goes through HSV and back: equal up to float rounding)
    np.testing.assert_allclose(color_jitter(rgb, np.random.default_rng(0), 0, 0, 0, 0), rgb, atol=1e-5)
    # brightness alone multiplies by one factor in [0.6, 1.4] (then clips to [0, 1])
    out = color_jitter(rgb * 0.5, np.random.default_rng(5), brightness=0.4, contrast=0, saturation=0, hue=0)
    factor = out / (rgb * 0.5)
    assert np.allclose(factor, factor.flat[0], atol=1e-4) and 0.6 <= factor.flat[0] <= 1.4
    # saturation 0 of a grey image keeps it grey
    gray = np.repeat(grayscale(rgb), 3, axis=2)
    out = color_jitter(gray, np.random.default_rng(6), brightness=0, contrast=0, saturation=0.4, hue=0)
    np.testing.assert_allclose(out, gray, atol=1e-6)


def test_bad_inputs_are_refused():
    with pytest.raises(UserError, match="crop_scale"):
        TwoViewTransform(crop_scale=(0.8, 0.5))
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        TwoViewTransform(40, 32)(np.zeros((8, 8), np.uint8))
