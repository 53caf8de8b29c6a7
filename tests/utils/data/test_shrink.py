"""Large images: area-averaged before the bilinear resize (shrink_large), the same in every transform, and
decoded once by a data set (kept shrunk in memory); small images untouched and read every time."""
import cv2
import numpy as np

from utils.data import dataset as dataset_module
from utils.data.dataset import ImageListDataset
from utils.data.transforms import build_transform, shrink_large
from utils.data.views import TwoViewTransform


def photo(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_shrink_only_images_four_times_the_resize_on_both_sides():
    small = photo(287, 1000)  # 287 < 4 x 72
    assert shrink_large(small, 72) is small
    big = photo(600, 800)
    out = shrink_large(big, 72)
    assert out.shape == (144, 192, 3)
    # area averaging: each output pixel is the mean of its source block (here 600/144 is not whole: compare
    # with OpenCV's own INTER_AREA on the same image, and check it is no bilinear sample)
    assert np.array_equal(out, cv2.resize(big, (192, 144), interpolation=cv2.INTER_AREA))
    assert abs(float(out.std()) - float(big.std())) > 20  # noise averaged away, not sampled


def test_every_transform_gives_the_same_for_the_photo_and_its_shrunk_copy():
    big = photo(640, 900, seed=1)
    for transform in (build_transform(False, 72, 64), build_transform(True, 72, 64), TwoViewTransform(72, 64)):
        a = transform(big, np.random.default_rng(3))
        b = transform(transform.prepare(big), np.random.default_rng(3))
        assert np.array_equal(a, b)
    # below the threshold nothing changes: the COCO recipe's 256 pixels on a 640 x 480 photo
    coco = photo(480, 640, seed=2)
    assert build_transform(False, 256, 224).prepare(coco) is coco


def test_a_data_set_decodes_a_large_image_once(tmp_path, monkeypatch):
    cv2.imwrite(str(tmp_path / "big.png"), photo(400, 500))
    cv2.imwrite(str(tmp_path / "small.png"), photo(100, 100))
    (tmp_path / "list.txt").write_text("big.png 1\nsmall.png 1\n", encoding="utf-8")
    reads = []
    real = dataset_module.read_image
    monkeypatch.setattr(dataset_module, "read_image", lambda path, *a: reads.append(path) or real(path, *a))
    data = ImageListDataset(str(tmp_path / "list.txt"), str(tmp_path), build_transform(False, 32, 32))
    first = [data[i][0] for i in (0, 1)]
    second = [data[i][0] for i in (0, 1)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert [r.rsplit("/", 1)[-1] for r in reads] == ["big.png", "small.png", "small.png"]
