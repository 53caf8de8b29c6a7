"""utils.inference.folder_source: a folder of images searched without lists, its codes cached and
brought up to date incrementally; with a stand-in encoder (a fixed random projection of the pixels)
that counts the images it is given, against codes computed here one image at a time."""
import json
import os

import cv2
import numpy as np
import pytest

from utils.data.images import read_image
from utils.data.transforms import build_transform
from utils.errors import DataError, WriteError
from utils.inference.encoders import EncoderBase
from utils.inference.folder_cache import CacheFiles
from utils.inference.folder_source import FolderSource, sync_folder
from utils.inference.searcher import Searcher

BIT = 16
PREPROCESS = {"resize_size": 16, "crop_size": 16, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


class CountingProjection(EncoderBase):
    """Pre-sign features = flattened preprocessed pixels @ a seeded Gaussian matrix; `seen` counts the images."""

    bit = BIT
    preprocess = PREPROCESS
    fingerprint = "projection-seed-1"

    def __init__(self):
        self.w = np.random.default_rng(1).standard_normal((3 * 16 * 16, BIT)).astype(np.float32)
        self.seen = 0

    def features(self, images):
        self.seen += len(images)
        return np.asarray(images, np.float32).reshape(len(images), -1) @ self.w


def reference_codes(folder, paths):
    """Codes of the images, one at a time, not through the loader or the cache."""
    transform, encoder = build_transform(False, **PREPROCESS), CountingProjection()
    return np.stack([encoder.encode(transform(read_image(os.path.join(folder, p)))[None]).codes[0] for p in paths])


def write_image(path, seed, ext=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext or os.path.splitext(path)[1], pixels)
    assert ok
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def make_folder(root, count, start=0):
    for i in range(start, start + count):
        write_image(os.path.join(root, f"album{i % 3}", f"IMG_{i:04d}.{'jpg' if i % 2 else 'PNG'}"), i)


def sync(folder, cache, encoder, said=None, **kw):
    return sync_folder(encoder, str(folder), str(cache), batch_size=4, num_workers=0,
                       log=(said.append if said is not None else lambda *a: None), **kw)


def listing(root):
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files)


def test_second_run_encodes_exactly_the_added_images_and_matches_a_full_encoding(tmp_path):
    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 12)
    before = listing(folder)
    encoder = CountingProjection()
    first = sync(folder, cache, encoder)
    assert (first.encoded, first.reused, encoder.seen) == (12, 0, 12)
    make_folder(folder, 3, start=12)
    encoder, said = CountingProjection(), []
    second = sync(folder, cache, encoder, said)
    assert encoder.seen == 3 and (second.encoded, second.reused, second.removed) == (3, 12, 0)
    assert second.summary() == f"database: 15 images under {folder}, 3 encoded, 12 from the cache"
    assert said == [f"encoding 3 images (new or changed files) -> {CacheFiles.of(str(cache), BIT, str(folder)).codes}"]
    paths = second.codes.paths
    assert paths == sorted(paths) and len(paths) == 15 and "album0/IMG_0012.PNG" in paths
    np.testing.assert_array_equal(second.codes.codes, reference_codes(str(folder), paths))
    encoder = CountingProjection()
    third = sync(folder, cache, encoder)
    assert encoder.seen == 0 and (third.encoded, third.reused) == (0, 15)
    # nothing was written into the photo folder (no hidden file either): only the images made here
    added = [f"album{i % 3}/IMG_{i:04d}.{'jpg' if i % 2 else 'PNG'}" for i in range(12, 15)]
    assert listing(folder) == sorted(before + added)


def test_a_removed_file_leaves_the_results_and_a_changed_one_is_encoded_again(tmp_path):
    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 9)
    sync(folder, cache, CountingProjection())
    os.remove(folder / "album1" / "IMG_0004.PNG")
    changed = folder / "album2" / "IMG_0005.jpg"
    write_image(str(changed), seed=99)                   # other pixels, same name
    st = os.stat(changed)
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    encoder, said = CountingProjection(), []
    again = sync(folder, cache, encoder, said)
    assert encoder.seen == 1 and (again.encoded, again.changed, again.removed, again.reused) == (1, 1, 1, 7)
    assert again.summary().endswith("1 encoded (1 changed), 7 from the cache, 1 removed since the last run")
    assert "album1/IMG_0004.PNG" not in again.codes.paths and len(again.codes.paths) == 8
    np.testing.assert_array_equal(again.codes.codes, reference_codes(str(folder), again.codes.paths))
    # the searcher over the folder never answers with the removed file
    searcher = Searcher(CountingProjection(), [FolderSource(str(folder), str(cache))], backend="numpy",
                        log=lambda *a: None)
    result = searcher.search(searcher.encode_images([read_image(str(changed))]).codes, k=20)
    assert [m.path for m in result.matches][0] == "album2/IMG_0005.jpg"
    assert "album1/IMG_0004.PNG" not in [m.path for m in result.matches] and len(result.matches) == 8


def test_a_file_rewritten_with_its_old_mtime_is_seen_by_its_ctime(tmp_path):
    """cp -p / rsync -t put the old mtime back; the size is the same for a PNG of the same shape."""
    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 4)
    sync(folder, cache, CountingProjection())
    target = folder / "album0" / "IMG_0000.PNG"
    st = os.stat(target)
    pixels = np.zeros((20, 20, 3), np.uint8)
    pixels[:10] = 255
    ok, buf = cv2.imencode(".PNG", pixels)
    with open(target, "wb") as f:
        f.write(buf.tobytes())
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    encoder = CountingProjection()
    again = sync(folder, cache, encoder)
    assert encoder.seen == 1 and again.changed == 1
    np.testing.assert_array_equal(again.codes.codes, reference_codes(str(folder), again.codes.paths))


@pytest.mark.parametrize("damage", ["truncated codes", "garbage json", "other folder", "codes swapped", "no json"])
def test_a_damaged_or_foreign_cache_is_rebuilt_not_trusted(tmp_path, damage):
    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 6)
    sync(folder, cache, CountingProjection())
    files = CacheFiles.of(str(cache), BIT, str(folder))
    if damage == "truncated codes":
        data = open(files.codes, "rb").read()
        open(files.codes, "wb").write(data[:len(data) // 2])
    elif damage == "garbage json":
        open(files.meta, "w").write("{not json")
    elif damage == "other folder":
        meta = json.load(open(files.meta))
        meta["root"] = "/somewhere/else"
        json.dump(meta, open(files.meta, "w"))
    elif damage == "codes swapped":                       # a valid array that is not the one the .json vouches for
        np.save(files.codes, -np.load(files.codes), allow_pickle=False)
    else:
        os.remove(files.meta)
    encoder, said = CountingProjection(), []
    rebuilt = sync(folder, cache, encoder, said)
    assert encoder.seen == 6 and rebuilt.encoded == 6 and rebuilt.reused == 0
    reason = {"truncated codes": "cache unreadable", "garbage json": "cache unreadable",
              "other folder": "fingerprint differs: root", "codes swapped": "sha256", "no json": "no cache yet"}[damage]
    assert reason in said[0] and said[0].startswith("encoding 6 images (")
    np.testing.assert_array_equal(rebuilt.codes.codes, reference_codes(str(folder), rebuilt.codes.paths))
    encoder = CountingProjection()
    assert sync(folder, cache, encoder).reused == 6 and encoder.seen == 0


def test_broken_images_are_skipped_with_one_line_listed_and_not_retried_until_they_change(tmp_path):
    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 5)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_bytes(b"this is text, not a picture")
    good = open(folder / "album1" / "IMG_0001.jpg", "rb").read()
    (folder / "cut.jpg").write_bytes(good[:len(good) // 3])
    encoder, said = CountingProjection(), []
    first = sync(folder, cache, encoder, said)
    source_said = []
    FolderSource(str(folder), str(cache), verbose=True).sync(CountingProjection(), 4, 0, source_said.append)
    bad = {"empty.jpg", "notes.png", "cut.jpg"}
    skipped = {p for p, _ in first.skipped}
    assert {"empty.jpg", "notes.png"} <= skipped <= bad  # OpenCV may decode the cut JPEG's first rows
    assert set(first.codes.paths) == {p for p in first.codes.paths if p not in bad} and len(first.codes.paths) >= 5
    assert first.encoded == len(first.codes.paths) and first.retried == len(skipped)
    warnings = [line for line in source_said if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0] == (
        f"warning: {len(skipped)} files under {folder} left out: {len(skipped)} not readable as images "
        f"({len(skipped)} known from earlier runs: not tried again until they change); listed in {first.skipped_file}")
    assert sum(line.startswith("  skipped empty.jpg: image file is empty") for line in source_said) == 1
    listed = open(first.skipped_file, encoding="utf-8").read()
    assert all(f"{p}\t" in listed for p in skipped)
    # second run: the bad files are unchanged, so nothing is decoded at all
    encoder = CountingProjection()
    again = sync(folder, cache, encoder)
    assert encoder.seen == 0 and again.retried == 0 and {p for p, _ in again.skipped} == skipped
    # a fixed file is tried again (and encoded)
    write_image(str(folder / "empty.jpg"), seed=7)
    encoder = CountingProjection()
    fixed = sync(folder, cache, encoder)
    assert encoder.seen == 1 and "empty.jpg" in fixed.codes.paths and fixed.changed == 1


def test_a_folder_without_images_is_one_error_line(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no image files under it"):
        sync(tmp_path / "photos", tmp_path / "out", CountingProjection())
    (tmp_path / "photos" / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no readable image under it"):
        sync(tmp_path / "photos", tmp_path / "out", CountingProjection())
    with pytest.raises(DataError, match="folder not found"):
        sync(tmp_path / "nowhere", tmp_path / "out", CountingProjection())


def test_an_up_to_date_cache_is_read_where_it_cannot_be_written(tmp_path, monkeypatch):
    """A read-only output folder (here: the lock file cannot be opened for writing) still serves an
    up-to-date cache; a change needs a write and is one WriteError line, before any encoding."""
    import utils.inference.code_cache as code_cache

    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 4)
    sync(folder, cache, CountingProjection())
    monkeypatch.setattr(code_cache, "open_lock", lambda path: (None, PermissionError(13, "Permission denied")))
    encoder = CountingProjection()
    assert sync(folder, cache, encoder).reused == 4 and encoder.seen == 0
    make_folder(folder, 1, start=4)
    with pytest.raises(WriteError, match="Permission denied"):
        sync(folder, cache, encoder)
    assert encoder.seen == 0


def test_the_searcher_over_a_folder_has_no_labels_and_rescores_with_cached_features(tmp_path):
    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 10)
    said = []
    searcher = Searcher(CountingProjection(), [FolderSource(str(folder), str(cache))], backend="numpy",
                        log=said.append, rescore=6)
    assert said[-1] == f"database: 10 images under {folder}, 10 encoded, 0 from the cache"
    assert searcher.num_classes == 0 and searcher.class_names == [] and len(searcher) == 10
    assert searcher.features is not None and searcher.features.values.dtype == np.int8
    query = searcher.encode_images([read_image(str(folder / "album1" / "IMG_0004.PNG"))])
    result = searcher.search(query.codes, k=3, features=query.features[0])
    top = result.matches[0]
    assert (top.path, top.distance, top.labels.shape) == ("album1/IMG_0004.PNG", 0, (0,))
    assert top.score is not None and top.score > 0.99
    assert searcher.image_path(top) == str(folder / "album1" / "IMG_0004.PNG")


def test_two_runs_at_once_encode_the_folder_once(tmp_path):
    """The cache's file lock (one open file each, as two processes have) makes the second wait and read
    what the first wrote."""
    from concurrent.futures import ThreadPoolExecutor

    import time

    class Slow(CountingProjection):  # encoding takes long enough for the runs to overlap
        def features(self, images):
            time.sleep(0.1)
            return super().features(images)

    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 16)
    encoders, said = [Slow(), Slow()], []
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda e: sync(folder, cache, e, said), encoders))
    assert sorted(e.seen for e in encoders) == [0, 16]
    assert sum(line.startswith("waiting for another process that holds") for line in said) == 1
    assert sorted(r.encoded for r in results) == [0, 16]
    np.testing.assert_array_equal(results[0].codes.codes, results[1].codes.codes)


def test_a_file_name_that_is_not_utf8_is_left_out_with_its_reason(tmp_path):
    """os.walk gives such a name with surrogate escapes, which no JSON answer, URL or UTF-8 terminal takes."""
    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 3)
    write_image(os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9.jpg"), seed=5, ext=".jpg")
    said = []
    FolderSource(str(folder), str(cache)).sync(CountingProjection(), 4, 0, said.append)
    result = sync(folder, cache, CountingProjection())
    assert len(result.codes.paths) == 3 and result.skipped == [("caf\udce9.jpg", "the file name is not valid UTF-8: "
                                                                "rename the file to search it")]
    assert said[-1].startswith(f"warning: 1 file under {folder} left out: 1 that could not be listed")


def test_features_of_added_images_beyond_the_stored_scale_widen_it_instead_of_clipping():
    from utils.inference.folder_source import _requantized
    from utils.retrieval.rescore import Int8Features

    rng = np.random.default_rng(0)
    first = rng.uniform(-1, 1, (50, 8)).astype(np.float32)
    added = rng.uniform(-1, 1, (5, 8)).astype(np.float32)
    added[:, 3] *= 6                                       # one dimension far beyond what the first images had
    kept, new = _requantized(Int8Features.quantize(first), added)
    np.testing.assert_array_equal(kept.scale, new.scale)
    assert kept.scale[3] == pytest.approx(np.abs(added[:, 3]).max() / 127)
    # every feature within half a step of each quantisation it went through (the kept rows: two)
    assert np.all(np.abs(new.dequantize() - added) <= new.scale / 2 + 1e-6)
    assert np.all(np.abs(kept.dequantize() - first) <= kept.scale / 2 + Int8Features.quantize(first).scale / 2 + 1e-6)
    same, _ = _requantized(Int8Features.quantize(first), added / 10)   # nothing beyond the scale: kept as it was
    np.testing.assert_array_equal(same.scale, Int8Features.quantize(first).scale)
    np.testing.assert_array_equal(same.values, Int8Features.quantize(first).values)


def test_a_failed_cache_write_leaves_the_old_cache_as_it_was(tmp_path, monkeypatch):
    """Disk full while the new generation is staged: one WriteError, no file of the cache replaced, no
    temp file left; the next run starts from the old cache."""
    import errno

    import utils.inference.folder_cache as folder_cache

    folder, cache = tmp_path / "photos", tmp_path / "out"
    make_folder(folder, 6)
    sync(folder, cache, CountingProjection())
    before = {name: (cache / name).read_bytes() for name in os.listdir(cache)}
    make_folder(folder, 2, start=6)
    calls, save = [], np.save

    def full(f, array, allow_pickle):
        calls.append(1)
        if len(calls) == 2:                                # the features, after the codes were staged
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(f, array, allow_pickle=allow_pickle)

    monkeypatch.setattr(folder_cache.np, "save", full)
    with pytest.raises(WriteError, match="No space left on device"):
        sync(folder, cache, CountingProjection())
    monkeypatch.undo()
    assert len(calls) == 2
    assert {name: (cache / name).read_bytes() for name in os.listdir(cache)} == before
    encoder = CountingProjection()
    again = sync(folder, cache, encoder)
    assert encoder.seen == 2 and (again.encoded, again.reused) == (2, 6)
