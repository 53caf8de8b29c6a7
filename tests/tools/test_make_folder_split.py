"""tools.make_folder_split on small generated folders (8x8 images): the three layouts, each bad file,
paths with spaces through training's list reader, the seeded draw, the counts and the summary."""
import json
import os

import cv2
import numpy as np
import pytest

from tests.tools.common import (assert_cli_error, check_partition, check_sha256sums, labels_by_path, lists, outputs,
                                run_tool)
from tools.make_folder_split import default_counts, make_split
from utils.data.dataset import ImageListDataset
from utils.data.images import read_image
from utils.data.lists import read_list
from utils.errors import DataError

CLASSES = {"cats": 6, "dogs": 6, "my birds": 6}


def image(path, seed, ext=".jpg"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, pixels)
    with open(path, "wb") as f:
        f.write(data.tobytes())
    return data.tobytes()


def write_tree(root):
    """Class folders (one name and its files with spaces, a nested folder, upper-case extensions), a
    class of one image, an image in the root, and the bad files; returns the good images' paths."""
    good = {}
    k = 0
    for name, count in CLASSES.items():
        for i in range(count):
            rel = f"{name}/img {i}.jpg" if name == "my birds" else f"{name}/{'sub/' if i == 0 else ''}{i}.JPG"
            image(os.path.join(root, rel), k)
            good[rel] = name
            k += 1
    image(os.path.join(root, "solo", "0.png"), 99, ".png")
    image(os.path.join(root, "loose.png"), 98, ".png")
    jpeg = image(os.path.join(root, ".thumbs", "t.jpg"), 97)  # hidden: never looked at
    open(os.path.join(root, "cats", "empty.jpg"), "wb").close()
    with open(os.path.join(root, "dogs", "text.jpg"), "w") as f:
        f.write("not a picture")
    with open(os.path.join(root, "dogs", "cut.jpg"), "wb") as f:
        f.write(jpeg[: len(jpeg) // 2])
    with open(os.path.join(root, "dogs", "notes.txt"), "w") as f:
        f.write("ignored: not an image extension")
    image(os.path.join(root, "cats", 'say "hi".jpg'), 96)
    return good


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("photos") / "photos")
    return root, write_tree(root)


def test_default_counts_scale_with_the_collection():
    assert default_counts(60) == (6, 54)
    assert default_counts(200_000) == (1000, 10_000)
    assert default_counts(5) == (1, 4) and default_counts(2) == (1, 1)
    assert default_counts(12_000) == (1000, 10_000) and default_counts(3000) == (300, 2700)


def test_class_folders_with_checked_images(tree, tmp_path):
    root, good = tree
    summary = make_split(root, out_dir=str(tmp_path / "out"), check_images=True, quiet=True)
    out = str(tmp_path / "out")
    outputs(out)
    check_sha256sums(out)
    check_partition(out, good)
    assert open(os.path.join(out, "classes.txt"), encoding="utf-8").read() == "cats\ndogs\nmy birds\n"
    names = sorted(CLASSES)
    assert labels_by_path(out) == {p: (names.index(c),) for p, c in good.items()}
    n = len(good)
    assert f"protocol: 2 random queries; database = the rest; {n - 2} training images drawn from the database; " \
           "seed 0" in summary  # 10% of 18, the whole database for training
    assert "checks: zero-byte files skipped; every image decoded (--check-images)" in summary
    lines = summary.splitlines()

    def listed(reason):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"skipped, {reason}"))
        end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("    ")), len(lines))
        return [line.strip() for line in lines[start + 1:end]]

    assert listed("zero-byte file (1)") == ["cats/empty.jpg"]
    assert listed("cannot be decoded (truncated, corrupt or not an image) (2)") == ["dogs/cut.jpg", "dogs/text.jpg"]
    assert listed("a path list files cannot hold") == ['cats/say "hi".jpg']
    assert listed("directly in the image root") == ["loose.png"]
    assert listed("class 'solo' has 1 image(s), fewer than --min-per-class 2 (1)") == ["solo/0.png"]
    assert "skipped: 6 files, listed at the end by reason" in summary
    assert "notes.txt" not in summary and ".thumbs" not in summary
    assert f"train: python main_single_gpu.py --dataset out --data-path {root} --list-dir {out}" in summary


def test_without_checking_only_zero_byte_files_are_skipped(tree, tmp_path):
    root, good = tree
    summary = make_split(root, out_dir=str(tmp_path), quiet=True)
    listed = set(labels_by_path(str(tmp_path)))
    assert listed == set(good) | {"dogs/cut.jpg", "dogs/text.jpg"}
    assert "images not decoded (--check-images finds unreadable ones)" in summary
    assert "skipped, zero-byte file (1):\n    cats/empty.jpg" in summary


def test_paths_with_spaces_are_quoted_and_read_back_by_training(tree, tmp_path):
    root, good = tree
    make_split(root, out_dir=str(tmp_path), check_images=True, quiet=True)
    text = "".join(open(tmp_path / f"{split}.txt", encoding="utf-8").read() for split in ("test", "database"))
    assert '"my birds/img 1.jpg" 0 0 1\n' in text
    for split in ("train", "test", "database"):
        data = ImageListDataset(str(tmp_path / f"{split}.txt"), root, transform=None)  # training's reader
        assert not data.bad and set(data.rel_paths) <= set(good)
        assert all(read_image(path).shape == (8, 8, 3) for path in data.paths)


def test_the_draw_depends_on_the_seed_only(tree, tmp_path):
    root, _ = tree
    runs = {}
    for name, seed, workers in (("a", 3, 1), ("b", 3, 4), ("c", 4, 2)):
        out = str(tmp_path / name / "mine")  # the summary names the data set after the folder
        make_split(root, out_dir=out, seed=seed, num_query=5, check_images=True, workers=workers, quiet=True)
        runs[name] = {k: v.replace(out.encode(), b"OUT") for k, v in outputs(out).items()}
    assert runs["a"] == runs["b"]  # same seed, serial or parallel decoding: byte-identical
    assert runs["a"]["test.txt"] != runs["c"]["test.txt"]


def test_unlabeled_any_tree(tree, tmp_path):
    root, good = tree
    summary = make_split(root, out_dir=str(tmp_path), unlabeled=True, check_images=True, num_query=3, num_train=7,
                         quiet=True)
    got = lists(str(tmp_path))
    assert all(labels.shape == (len(paths), 0) for paths, labels in got.values())
    assert set(got["test"][0]) | set(got["database"][0]) == set(good) | {"loose.png", "solo/0.png"}
    assert len(got["test"][0]) == 3 and len(got["train"][0]) == 7 and set(got["train"][0]) <= set(got["database"][0])
    assert open(tmp_path / "classes.txt", encoding="utf-8").read() == ""
    first = open(tmp_path / "database.txt", encoding="utf-8").read().splitlines()
    assert all(line.endswith(".jpg") or line.endswith(".JPG") or line.endswith(".png") or line.endswith('.jpg"')
               for line in first)
    assert "images used: 20; unlabelled (lists of paths alone, classes.txt empty)" in summary
    assert "directly in the image root" not in summary


LABELS_CSV = '''path,labels
cats/1.JPG,cat
cats/2.JPG,"cat;indoor"
"my birds/img 0.jpg",bird,outdoor
"my birds/img 1.jpg",big bird
dogs/1.JPG,dog,outdoor
dogs/2.JPG,dog
dogs/2.JPG,indoor
dogs/3.JPG,
# a comment
cats/gone.jpg,cat
cats/empty.jpg,cat
dogs/text.jpg,dog
cats/3.JPG,bird
./cats/4.JPG,cat;outdoor
'''


def labelled_split(tree, tmp_path, labels_file, **kw):
    return make_split(tree[0], out_dir=str(tmp_path / "out"), labels=str(labels_file), check_images=True,
                      num_query=2, quiet=True, **kw)


def test_labels_csv_multi_label(tree, tmp_path):
    (tmp_path / "labels.csv").write_text(LABELS_CSV, encoding="utf-8")
    summary = labelled_split(tree, tmp_path, tmp_path / "labels.csv")
    out = str(tmp_path / "out")
    classes = open(os.path.join(out, "classes.txt"), encoding="utf-8").read().splitlines()
    assert classes == ["bird", "cat", "dog", "indoor", "outdoor"]  # "big bird" is on one image only: left out
    got = {p: {classes[c] for c in idx} for p, idx in labels_by_path(out).items()}
    assert got == {"cats/1.JPG": {"cat"}, "cats/2.JPG": {"cat", "indoor"}, "my birds/img 0.jpg": {"bird", "outdoor"},
                   "dogs/1.JPG": {"dog", "outdoor"}, "dogs/2.JPG": {"dog", "indoor"}, "cats/3.JPG": {"bird"},
                   "cats/4.JPG": {"cat", "outdoor"}}
    labels_path = str(tmp_path / "labels.csv")
    assert f"skipped, named in {labels_path} but not an image found under --image-root (1):\n" \
           "    cats/gone.jpg  (line 11)" in summary
    assert "skipped, zero-byte file (1):\n    cats/empty.jpg" in summary
    assert "dogs/text.jpg" in summary and "my birds/img 1.jpg" in summary  # undecodable; only a rare label
    assert "labels on fewer than --min-per-class 2 images, left out: big bird" in summary
    assert "dropped (no label): 1" in summary  # dogs/3.JPG


def test_labels_json_both_forms_match_the_csv(tree, tmp_path):
    table = {"cats/1.JPG": ["cat"], "cats/2.JPG": ["cat", "indoor"], "my birds/img 0.jpg": "indoor",
             "dogs/1.JPG": ["dog", "indoor"], "dogs/2.JPG": ["dog"], "cats/gone.jpg": ["cat"]}
    (tmp_path / "a.json").write_text(json.dumps(table), encoding="utf-8")
    (tmp_path / "b.JSON").write_text(json.dumps([{"path": p, "labels": v} for p, v in table.items()]), "utf-8")
    (tmp_path / "c.csv").write_text("".join(f'"{p}",{";".join([v] if isinstance(v, str) else v)}\n'
                                            for p, v in table.items()), encoding="utf-8")
    results = {}
    for name in ("a.json", "b.JSON", "c.csv"):
        summary = labelled_split(tree, tmp_path, tmp_path / name)
        results[name] = {k: v for k, v in outputs(str(tmp_path / "out")).items() if k != "summary.txt"}
        assert f"cats/gone.jpg  ({'line' if name.endswith('csv') else 'entry'} 6)" in summary
    assert results["a.json"] == results["b.JSON"] == results["c.csv"]
    assert results["a.json"]["classes.txt"] == b"cat\ndog\nindoor\n"


@pytest.mark.parametrize("name,text,where,fragment", [
    ("bad.csv", 'cats/1.JPG,cat\n"cats/2.JPG,cat\n', ":2: not valid CSV", "unexpected end of data"),
    ("bad.json", '{"cats/1.JPG": ["cat"],\n "cats/2.JPG": ["cat"\n}', ":3: invalid JSON", ""),
    ("semi.csv", "path;label\ncats/1.JPG;cat\n", ":1: one cell", "comma-separated"),
    ("abs.csv", "/etc/cats/1.JPG,cat\n", ":1: image path", "absolute"),
    ("up.csv", "cats/1.JPG,cat\n../x.jpg,cat\n", ":2: image path", "'..'"),
    ("ctl.csv", "cats/1.JPG,c\x01t\n", ":1: label", "control character"),
    ("shape.json", '{"cats/1.JPG": 3}', ": entry 1", "list of strings"),
])
def test_a_bad_labels_file_is_one_error_naming_file_and_line(tree, tmp_path, name, text, where, fragment):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        labelled_split(tree, tmp_path, tmp_path / name)
    message = str(err.value)
    assert message.startswith(str(tmp_path / name) + where) and fragment in message and "\n" not in message


def test_collections_too_small_or_empty(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        make_split(str(tmp_path / "empty"), out_dir=str(tmp_path / "o"), quiet=True)
    image(str(tmp_path / "flat" / "a.jpg"), 1)
    image(str(tmp_path / "flat" / "b.jpg"), 2)
    with pytest.raises(DataError, match="no class folders .* use --unlabeled or --labels FILE"):
        make_split(str(tmp_path / "flat"), out_dir=str(tmp_path / "o"), quiet=True)
    with pytest.raises(DataError, match="--num-query 2: only 2 usable images, and the database needs one"):
        make_split(str(tmp_path / "flat"), out_dir=str(tmp_path / "o"), unlabeled=True, num_query=2, quiet=True)
    with pytest.raises(DataError, match="--num-train 2: only 1 database images"):
        make_split(str(tmp_path / "flat"), out_dir=str(tmp_path / "o"), unlabeled=True, num_train=2, quiet=True)
    open(tmp_path / "flat" / "b.jpg", "wb").close()
    with pytest.raises(DataError, match="1 usable image\\(s\\); a split needs at least 2"):
        make_split(str(tmp_path / "flat"), out_dir=str(tmp_path / "o"), unlabeled=True, quiet=True)
    with pytest.raises(DataError, match="--unlabeled and --labels: give one"):
        make_split(str(tmp_path / "flat"), out_dir=str(tmp_path / "o"), unlabeled=True, labels="x.csv", quiet=True)
    assert not os.path.exists(tmp_path / "o")  # nothing written on an error
    for i in range(3):
        image(str(tmp_path / "one" / "only class" / f"{i}.jpg"), i)
    summary = make_split(str(tmp_path / "one"), out_dir=str(tmp_path / "o"), quiet=True)
    assert "only one class: every database image matches every query (use --unlabeled" in summary


def test_link_loops_and_dead_links_are_listed(tmp_path):
    root = tmp_path / "pics"
    for i in range(3):
        image(str(root / "a" / f"{i}.jpg"), i)
    os.symlink(str(root), str(root / "a" / "loop"))
    os.symlink(str(tmp_path / "nowhere.jpg"), str(root / "a" / "dead.jpg"))
    summary = make_split(str(root), out_dir=str(tmp_path / "o"), unlabeled=True, quiet=True)
    assert "skipped, a link to a folder already walked (a loop?) (1):\n    a/loop" in summary
    assert "skipped, a link to nothing (1):\n    a/dead.jpg" in summary


@pytest.mark.slow  # runs the tool in a new process
def test_command_line(tree, tmp_path):
    code, out, err = run_tool("make_folder_split", "--image-root", tree[0], "--out-dir", tmp_path / "mine",
                              "--check-images")
    assert code == 0 and "Traceback" not in err, err
    assert "skipped, zero-byte file (1):" in out and f"wrote {tmp_path / 'mine'}" in out
    assert read_list(str(tmp_path / "mine" / "test.txt"))[1].shape[1] == 3
    assert_cli_error("make_folder_split", "--image-root", tmp_path / "nope", fragment="folder not found")


def test_unreadable_folders_and_files_are_listed(tmp_path, monkeypatch):
    """Root reads everything, so the refusals are the OS's answers made by hand: a folder os.walk cannot
    list and a file whose size cannot be read."""
    root = tmp_path / "pics"
    for folder in ("a", "locked"):
        for i in range(3):
            image(str(root / folder / f"{i}.jpg"), i)
    real_scandir, real_getsize = os.scandir, os.path.getsize

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    def getsize(path):
        if path.endswith("a/1.jpg"):
            raise PermissionError(13, "Permission denied", path)
        return real_getsize(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os.path, "getsize", getsize)
    summary = make_split(str(root), out_dir=str(tmp_path / "o"), unlabeled=True, quiet=True)
    assert "skipped, cannot read the folder: Permission denied (1):\n    locked" in summary
    assert "skipped, cannot be read: Permission denied (1):\n    a/1.jpg" in summary
    assert sorted(labels_by_path(str(tmp_path / "o"))) == ["a/0.jpg", "a/2.jpg"]
