"""`python -m deploy.serving --database-dir DIR`: the service over every image under a folder, through the
same FolderSource as predict.py; a restart encodes only the images added since."""
import os
import shutil

import pytest
from fastapi.testclient import TestClient

from deploy.serving import cli
from deploy.serving.app import create_app
from tests.deploy.conftest import db_list
from utils.data.lists import parse_list
from utils.inference.folder_source import FolderSource

pytestmark = pytest.mark.slow  # an exported model, Paddle Inference


def photo_folder(serving_data, root, count, start=0):
    """Lite images copied into a folder tree of their own (no lists)."""
    paths, _ = parse_list(db_list(serving_data))
    for i in range(start, start + count):
        target = os.path.join(root, f"trip {i % 2}", f"IMG_{i:03d}.JPG")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(serving_data, paths[i]), target)


def start(serving_model, folder, tmp_path, said):
    args = cli.parse_args(["--model-dir", serving_model, "--database-dir", str(folder), "--cache-dir",
                           str(tmp_path / "cache"), "--predictors", "1", "--num-workers", "0"])
    return cli.build_service(args, log=said.append)


def test_the_service_searches_a_folder_and_a_restart_encodes_only_the_added_images(serving_model, serving_data,
                                                                                   tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # the default store is under ./output
    folder = tmp_path / "photos"
    photo_folder(serving_data, str(folder), 10)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    said = []
    service = start(serving_model, folder, tmp_path, said)
    assert isinstance(service.settings.search.database, FolderSource)
    assert f"database: 10 images under {folder}, 10 encoded, 0 from the cache" in said
    assert any(line.startswith(f"warning: 1 file under {folder} left out: 1 not readable as images") for line in said)
    client = TestClient(create_app(service), base_url="http://localhost")
    stats = client.get("/stats").json()
    assert stats["database_size"] == stats["data_set_images"] == 10 and stats["classes"] == []
    assert stats["data_root"] == str(folder)
    with open(folder / "trip 1" / "IMG_003.JPG", "rb") as f:
        data = f.read()
    answer = client.post("/search", files={"file": ("q.jpg", data)}, data={"k": "3"}).json()
    top = answer["matches"][0]
    assert (top["distance"], top["labels"], top["source"]) == (0, [], "data")
    assert top["path"] in {"trip 1/IMG_003.JPG"} | {m["path"] for m in answer["matches"] if m["distance"] == 0}
    image = client.get(top["url"])
    assert image.status_code == 200 and len(image.content) == os.path.getsize(folder / top["path"])
    added = client.post("/items", files={"files": ("new.jpg", data)}).json()
    assert added["database_size"] == 11
    assert os.path.isdir(os.path.join("output", f"serving_folder_{cli.RunFolder.folder_key(str(folder))}"))
    # restart after two more photos: only they are encoded; the added item is still there
    photo_folder(serving_data, str(folder), 2, start=10)
    said.clear()
    again = start(serving_model, folder, tmp_path, said)
    assert f"database: 12 images under {folder}, 2 encoded, 10 from the cache" in said and len(again) == 13


def test_database_dir_refuses_the_flags_of_a_list(tmp_path, capsys):
    for flag, value in (("--data-path", str(tmp_path)), ("--dataset", "lite"), ("--list-dir", str(tmp_path))):
        with pytest.raises(SystemExit):
            cli.parse_args(["--database-dir", str(tmp_path), flag, value])
        assert f"--database-dir searches a folder instead of a data set's database list: drop {flag}" in \
            capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["--database-dir", str(tmp_path / "nope")])
    assert "--database-dir: folder not found" in capsys.readouterr().err
    assert cli.parse_args([]).dataset == "lite"
