import os

import cv2
import numpy as np
import pytest

from utils.data.dataset import ImageListDataset
from utils.data.images import read_image
from utils.data.lists import parse_list
from utils.data.loader import build_dataloader, EpochBatchSampler
from utils.data.transforms import build_transform, preprocess_image
from utils.errors import UserError

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def write(path, text, newline="\n"):
    with open(path, "w", encoding="utf-8", newline=newline) as f:
        f.write(text)
    return str(path)


def write_png(path, array):
    ok, buf = cv2.imencode(".png", array)
    assert ok
    buf.tofile(str(path))
    return str(path)


# --------------------------------------------------------------------------- parse_list


def test_parse_list_good_lines_and_blank_lines(tmp_path):
    lst = write(tmp_path / "l.txt", "a.jpg 0 1 1\n\n   \nsub/b.jpg 1 0 0\n\n")
    paths, labels = parse_list(lst)
    assert paths == ["a.jpg", "sub/b.jpg"]
    assert labels.dtype == np.float32 and labels.shape == (2, 3)
    np.testing.assert_array_equal(labels, [[0, 1, 1], [1, 0, 0]])


def test_parse_list_crlf_and_given_num_classes(tmp_path):
    lst = write(tmp_path / "l.txt", "a.jpg 0 1\r\nb.jpg 1 1\r\n", newline="")
    paths, labels = parse_list(lst, num_classes=2)
    assert paths == ["a.jpg", "b.jpg"]
    np.testing.assert_array_equal(labels, [[0, 1], [1, 1]])


def test_parse_list_accepts_float_style_labels(tmp_path):
    lst = write(tmp_path / "l.txt", "a.jpg 1.0 0.0 1\n")
    _, labels = parse_list(lst)
    np.testing.assert_array_equal(labels, [[1, 0, 1]])


def test_parse_list_wrong_label_count_names_file_and_line(tmp_path):
    lst = write(tmp_path / "train.txt", "a.jpg 0 1 0\n\nb.jpg 0 1\n")
    with pytest.raises(UserError) as exc:
        parse_list(lst)
    assert str(exc.value) == f"{lst}:3: expected 3 labels, got 2"


def test_parse_list_wrong_count_against_num_classes(tmp_path):
    lst = write(tmp_path / "train.txt", "a.jpg 0 1 0\n")
    with pytest.raises(UserError, match=r"train\.txt:1: expected 80 labels, got 3"):
        parse_list(lst, num_classes=80)


@pytest.mark.parametrize("bad", ["x", "2", "-1", "0.5", "nan"])
def test_parse_list_non_binary_label(tmp_path, bad):
    lst = write(tmp_path / "l.txt", f"a.jpg 0 1\nb.jpg {bad} 1\n")
    with pytest.raises(UserError) as exc:
        parse_list(lst)
    assert str(exc.value) == f"{lst}:2: label '{bad}' is not 0 or 1"


def test_parse_list_no_labels(tmp_path):
    lst = write(tmp_path / "l.txt", "a.jpg 0 1\nb.jpg\n")
    with pytest.raises(UserError, match=r"l\.txt:2: no labels"):
        parse_list(lst)


def test_parse_list_missing_and_empty(tmp_path):
    with pytest.raises(UserError, match=r"nope\.txt: list file not found"):
        parse_list(str(tmp_path / "nope.txt"))
    empty = write(tmp_path / "empty.txt", "\n \n")
    with pytest.raises(UserError, match=r"empty\.txt: no images listed"):
        parse_list(empty)


# --------------------------------------------------------------------------- read_image


def test_read_image_color_png_is_rgb(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 20, 30  # B, G, R
    img = read_image(write_png(tmp_path / "c.png", bgr))
    assert img.dtype == np.uint8 and img.shape == (5, 7, 3)
    np.testing.assert_array_equal(img[0, 0], [30, 20, 10])


def test_read_image_non_ascii_name(tmp_path):
    path = write_png(tmp_path / "图片 ü.png", np.full((4, 4, 3), 7, np.uint8))
    assert read_image(path).shape == (4, 4, 3)


def test_read_image_grayscale(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    img = read_image(write_png(tmp_path / "g.png", gray))
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_read_image_rgba_drops_alpha(tmp_path):
    bgra = np.zeros((3, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 0
    img = read_image(write_png(tmp_path / "a.png", bgra))
    assert img.shape == (3, 3, 3)
    np.testing.assert_array_equal(img[1, 1], [30, 20, 10])


def test_read_image_16bit(tmp_path):
    bgr16 = np.zeros((3, 3, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 1], bgr16[..., 2] = 1000, 30000, 65535
    img = read_image(write_png(tmp_path / "h.png", bgr16))
    assert img.dtype == np.uint8 and img.shape == (3, 3, 3)
    np.testing.assert_array_equal(img[0, 0], [255, 30000 >> 8, 1000 >> 8])


def test_read_image_errors(tmp_path):
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(UserError, match="missing.jpg: image not found"):
        read_image(missing)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty.jpg: image file is empty"):
        read_image(str(empty))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff this is not really a jpeg" * 5)
    with pytest.raises(UserError, match="corrupt.jpg: cannot decode image"):
        read_image(str(corrupt))


# --------------------------------------------------------------------------- transforms


def random_image(h=40, w=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def normalise(hwc_uint8):
    return ((hwc_uint8.astype(np.float64) / 255.0 - MEAN) / STD).transpose(2, 0, 1)


def test_transform_shapes_and_dtype():
    img = random_image()
    for train in (True, False):
        out = build_transform(train, resize_size=32, crop_size=24)(img, np.random.default_rng(0))
        assert out.shape == (3, 24, 24) and out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]


def test_test_transform_center_crop_matches_numpy_slice():
    img = random_image()
    out = build_transform(False, resize_size=32, crop_size=24)(img, None)
    resized = cv2.resize(img, (32, 32), interpolation=cv2.INTER_LINEAR)
    expected = normalise(resized[4:28, 4:28])
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_test_transform_default_sizes():
    img = random_image(300, 400)
    out = build_transform(False)(img, None)
    resized = cv2.resize(img, (256, 256), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out, normalise(resized[16:240, 16:240]), atol=1e-5)


def test_train_transform_deterministic_with_fixed_rng_and_is_a_crop():
    img = random_image()
    t = build_transform(True, resize_size=32, crop_size=24)
    a = t(img, np.random.default_rng(123))
    b = t(img, np.random.default_rng(123))
    np.testing.assert_array_equal(a, b)
    resized = normalise(cv2.resize(img, (32, 32), interpolation=cv2.INTER_LINEAR))
    # The output is one of the 9 x 9 crops, possibly flipped.
    found = False
    for top in range(9):
        for left in range(9):
            crop = resized[:, top:top + 24, left:left + 24]
            if np.allclose(a, crop, atol=1e-5) or np.allclose(a, crop[:, :, ::-1], atol=1e-5):
                found = True
    assert found
    outs = {t(img, np.random.default_rng(s)).tobytes() for s in range(10)}
    assert len(outs) > 1


def test_train_transform_flips_sometimes():
    img = random_image()
    t = build_transform(True, resize_size=24, crop_size=24)  # crop == resize: only the flip is random
    resized = normalise(cv2.resize(img, (24, 24), interpolation=cv2.INTER_LINEAR))
    flips = 0
    for s in range(20):
        out = t(img, np.random.default_rng(s))
        if np.allclose(out, resized[:, :, ::-1], atol=1e-5):
            flips += 1
        else:
            np.testing.assert_allclose(out, resized, atol=1e-5)
    assert 0 < flips < 20


def test_transform_rejects_bad_sizes():
    with pytest.raises(UserError):
        build_transform(False, resize_size=20, crop_size=24)
    with pytest.raises(UserError):
        build_transform(False, std=(0.1, 0, 0.1))


def test_preprocess_image(tmp_path):
    bgr = random_image(30, 30)
    path = write_png(tmp_path / "p.png", bgr)
    out = preprocess_image(path, 32, 24, MEAN, STD)
    expected = build_transform(False, 32, 24)(bgr[..., ::-1].copy(), None)
    np.testing.assert_allclose(out, expected, atol=1e-6)


# --------------------------------------------------------------------------- dataset / loader


@pytest.fixture
def image_list(tmp_path):
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    lines = []
    for i in range(10):
        write_png(root / "img" / f"{i}.png", random_image(20, 20, seed=i))
        bits = [(i >> b) & 1 for b in range(4)]
        lines.append(f"img/{i}.png " + " ".join(map(str, bits)))
    lst = write(tmp_path / "list.txt", "\n".join(lines) + "\n")
    return lst, str(root)


def test_dataset_items(image_list):
    lst, root = image_list
    ds = ImageListDataset(lst, root, build_transform(True, 16, 12), seed=3)
    assert len(ds) == 10 and ds.num_classes == 4
    assert ds.rel_paths[2] == "img/2.png" and ds.paths[2].endswith("img/2.png")
    image, label, index = ds[5]
    assert image.shape == (3, 12, 12) and image.dtype == np.float32
    assert label.dtype == np.float32 and label.tolist() == [1, 0, 1, 0]
    assert isinstance(index, np.int64) and index == 5
    # Reproducible per (seed, epoch, index); different in another epoch.
    np.testing.assert_array_equal(ds[5][0], image)
    ds.set_epoch(1)
    assert not np.array_equal(ds[5][0], image)
    ds.set_epoch(0)
    np.testing.assert_array_equal(ds[5][0], image)
    with pytest.raises(IndexError):
        ds[10]


def test_dataset_missing_image_names_list_line(image_list, tmp_path):
    lst, root = image_list
    bad = write(tmp_path / "bad.txt", "img/0.png 0 1 0 0\nimg/nope.png 1 0 0 0\n")
    with pytest.raises(UserError, match=r"bad\.txt:2: image not found"):
        ImageListDataset(bad, root, None)
    with pytest.raises(UserError, match="data folder not found"):
        ImageListDataset(lst, str(tmp_path / "nowhere"), None)


def batches(loader, epoch):
    loader.batch_sampler.set_epoch(epoch)
    return [(img.numpy(), lab.numpy(), idx.numpy()) for img, lab, idx in loader]


def test_dataloader_shapes_and_reproducible_order(image_list):
    lst, root = image_list
    ds = ImageListDataset(lst, root, build_transform(True, 16, 12), seed=0)
    loader = build_dataloader(ds, batch_size=4, shuffle=True, drop_last=False, seed=7)
    assert len(loader) == 3 and len(loader.batch_sampler) == 3
    first = batches(loader, 0)
    assert [b[2].shape[0] for b in first] == [4, 4, 2]
    img, lab, idx = first[0]
    assert img.shape == (4, 3, 12, 12) and img.dtype == np.float32
    assert lab.shape == (4, 4) and lab.dtype == np.float32
    assert idx.dtype == np.int64
    order0 = np.concatenate([b[2] for b in first])
    assert sorted(order0.tolist()) == list(range(10))
    np.testing.assert_array_equal(lab, ds.labels[idx])

    again = batches(build_dataloader(ds, 4, True, False, seed=7), 0)
    for a, b in zip(first, again):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    order1 = np.concatenate([b[2] for b in batches(loader, 1)])
    assert order1.tolist() != order0.tolist()

    dropped = build_dataloader(ds, 4, shuffle=False, drop_last=True)
    assert len(dropped) == 2
    assert np.concatenate([b[2] for b in batches(dropped, 0)]).tolist() == list(range(8))


def test_dataloader_workers_match_single_process(image_list):
    lst, root = image_list
    ds = ImageListDataset(lst, root, build_transform(True, 16, 12), seed=1)
    single = batches(build_dataloader(ds, 4, True, False, num_workers=0, seed=2), 3)
    multi = batches(build_dataloader(ds, 4, True, False, num_workers=2, seed=2), 3)
    assert len(single) == len(multi)
    for a, b in zip(single, multi):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_batch_sampler_replicas_are_disjoint_and_cover(image_list):
    lst, root = image_list
    ds = ImageListDataset(lst, root, None)
    shares = []
    for rank in range(3):
        sampler = EpochBatchSampler(ds, 2, shuffle=True, seed=5, num_replicas=3, rank=rank)
        sampler.set_epoch(4)
        got = [i for batch in sampler for i in batch]
        assert len(got) == 4 and len(sampler) == 2
        shares.append(got)
    assert set(sum(shares, [])) == set(range(10))


def test_dataloader_rejects_too_small_for_one_batch(image_list):
    lst, root = image_list
    ds = ImageListDataset(lst, root, None)
    with pytest.raises(UserError, match="fewer than one batch"):
        build_dataloader(ds, 64, shuffle=True, drop_last=True)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_error_in_dataset_is_raised_not_hung(image_list, num_workers):
    """paddle's own single-process iterator hangs when the dataset raises; ours must not."""
    lst, root = image_list
    ds = ImageListDataset(lst, root, build_transform(False, 16, 12))
    os.remove(ds.paths[6])  # disappears after the list was checked
    loader = build_dataloader(ds, 4, shuffle=False, drop_last=False, num_workers=num_workers)
    with pytest.raises(UserError) as exc:
        for _ in loader:
            pass
    assert str(exc.value) == (f"{lst}:{ds.linenos[6]}: {ds.paths[6]}: image not found "
                              "(or skip such images with --skip-bad-images)")


def test_dataloader_workers_early_break(image_list):
    lst, root = image_list
    ds = ImageListDataset(lst, root, build_transform(False, 16, 12))
    loader = build_dataloader(ds, 2, shuffle=True, drop_last=False, num_workers=2)
    for epoch in range(2):
        loader.batch_sampler.set_epoch(epoch)
        for i, (img, _, _) in enumerate(loader):
            assert img.shape == [2, 3, 12, 12]
            if i == 1:
                break


def test_sampler_is_paddles_distributed_sampler_with_an_order_from_the_seed(image_list):
    import paddle

    lst, root = image_list
    ds = ImageListDataset(lst, root, None)
    a, b = (EpochBatchSampler(ds, 3, shuffle=True, seed=s) for s in (1, 2))
    assert isinstance(a, paddle.io.DistributedBatchSampler) and len(a) == 4 and len(EpochBatchSampler(ds, 3, drop_last=True)) == 3
    for sampler in (a, b):
        sampler.set_epoch(0)
    order = [i for batch in a for i in batch]
    assert sorted(order) == list(range(10)) and order != [i for batch in b for i in batch]  # the seed decides
    assert [i for batch in a for i in batch] == order  # iterating again is the same epoch (paddle's own advances it)
    again = EpochBatchSampler(ds, 3, shuffle=True, seed=1)
    again.set_epoch(0)
    assert [i for batch in again for i in batch] == order
    a.set_epoch(1)
    assert ds.epoch == 1 and [i for batch in a for i in batch] != order


def test_class_names_from_classes_txt_or_numbers(tmp_path):
    from utils.data.lists import class_names

    (tmp_path / "classes.txt").write_text("cat\n\ndog\nbird\n", encoding="utf-8")
    assert class_names(str(tmp_path), 3) == ["cat", "dog", "bird"]
    assert class_names(str(tmp_path), 4) == ["0", "1", "2", "3"]  # a file for another label count is not used
    assert class_names(str(tmp_path / "none"), 2) == ["0", "1"]


def test_parse_list_of_unlabelled_images(tmp_path):
    lst = write(tmp_path / "u.txt", "a.jpg\n\nsub/b.jpg\r\nc.jpg\n")
    paths, labels = parse_list(lst)
    assert paths == ["a.jpg", "sub/b.jpg", "c.jpg"] and labels.shape == (3, 0) and labels.dtype == np.float32


def test_a_list_mixing_labelled_and_unlabelled_lines_names_the_line(tmp_path):
    lst = write(tmp_path / "m.txt", "a.jpg\nb.jpg 0 1\n")
    with pytest.raises(UserError, match=r"m\.txt:2: 2 labels in a list whose first image has none"):
        parse_list(lst)
    with pytest.raises(UserError, match=r"m2\.txt:2: no labels"):
        parse_list(write(tmp_path / "m2.txt", "a.jpg 1 0\nb.jpg\n"))
