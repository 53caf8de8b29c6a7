"""predict.py --database-dir DIR: a folder searched without lists or labels, encoded incrementally."""
import os
import re
import shutil

import paddle
import pytest

from utils.data.lists import parse_list

pytestmark = pytest.mark.slow  # builds a network and encodes images


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from models import build_model
    from utils.config import build_config

    paddle.seed(0)
    cfg = build_config(None, {"bit": 16}, ["model.fc_dim=64"])
    path = tmp_path_factory.mktemp("weights") / "w.pdparams"
    paddle.save(build_model(cfg).state_dict(), str(path))
    return str(path)[: -len(".pdparams")]


def copy_images(tiny_lite, folder, count, start=0):
    paths, _ = parse_list(os.path.join(tiny_lite, "database.txt"))
    for i in range(start, start + count):
        target = os.path.join(folder, f"day {i % 3}", f"photo_{i:02d}.jpg")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(tiny_lite, paths[i]), target)


def rows(out):
    return [line.split(None, 2) for line in out.splitlines() if re.match(r"^ +\d+ +\d+  ", line)]


def test_predict_searches_a_folder_and_encodes_only_what_was_added(tiny_lite, weights, tmp_path, capsys):
    import predict

    folder = tmp_path / "photos"
    copy_images(tiny_lite, str(folder), 9)
    (folder / "day 0" / "broken.png").write_bytes(b"")
    query = str(tmp_path / "query.jpg")                  # a copy of day 1/photo_04.jpg, outside the folder
    shutil.copyfile(folder / "day 1" / "photo_04.jpg", query)
    base = ["--bit", "16", "--img", query, "--pretrained", weights, "-o", "model.fc_dim=64", "--database-dir",
            str(folder), "--save-path", str(tmp_path / "out"), "--num-workers", "0", "--topk", "20"]
    predict.main(base)
    out, err = capsys.readouterr()
    assert f"database: 9 images under {folder}, 9 encoded, 0 from the cache" in err
    assert f"warning: 1 file under {folder} left out: 1 not readable as images;" in err
    assert "query labels" not in out and "top 9 of 9 database images:" in out
    assert re.search(r"^rank distance  image$", out, re.M)                       # no labels column
    found = rows(out)
    assert len(found) == 9 and all(len(r) == 3 and r[2].startswith("day ") for r in found)
    assert any(r[2].strip() == "day 1/photo_04.jpg" and r[1] == "0" for r in found)
    before = sorted(os.listdir(folder / "day 0"))

    copy_images(tiny_lite, str(folder), 2, start=9)
    predict.main([*base, "--verbose", "--rescore", "11", "--topk", "3"])
    out, err = capsys.readouterr()
    assert f"database: 11 images under {folder}, 2 encoded, 9 from the cache" in err
    assert "  skipped day 0/broken.png: image file is empty" in err
    assert "re-ranked by feature cosine" in out
    assert re.search(r"^ +1 +0 +[01]\.\d{4}  day 1/photo_04\.jpg$", out, re.M), out  # the query itself, cosine ~1
    assert sorted(os.listdir(folder / "day 0")) == before + ["photo_09.jpg"]      # nothing written into it

    os.remove(folder / "day 1" / "photo_04.jpg")
    predict.main([*base, "--radius", "16"])
    out, err = capsys.readouterr()
    assert "0 encoded, 10 from the cache, 1 removed since the last run" in err
    assert "10 database images within Hamming radius 16" in out and "photo_04" not in out


def test_database_dir_with_a_data_path_is_one_error_line(tmp_path, capsys):
    import predict

    (tmp_path / "q.jpg").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--bit", "16", "--img", str(tmp_path / "q.jpg"), "--database-dir", str(tmp_path),
                      "--data-path", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --database-dir searches the folder {tmp_path} instead of the data set's database list: drop "
        "--data-path")
