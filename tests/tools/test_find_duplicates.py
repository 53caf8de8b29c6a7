"""tools.find_duplicates: flags checked in one line; on a small folder with known duplicate groups it
trains the default method without labels, finds the groups, writes the report, and reuses the model."""
import csv
import json
import os

import cv2
import numpy as np
import pytest

from tests.tools.common import run_tool


def pattern(seed, size=48):
    """A distinct picture a seed: blocks of colour at random places on a gradient."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = np.linspace(0, 255, size, dtype=np.uint8)[:, None, None] * rng.random(3)
    for _ in range(6):
        y, x = rng.integers(0, size - 12, 2)
        image[y:y + 12, x:x + 12] = rng.integers(0, 256, 3)
    return image


@pytest.mark.parametrize("flags, fragment", [
    (["--pretrained", "p", "--model-dir", "."], "give one model"),
    (["--pretrained", "p"], "--bit"),
    (["--radius", "65"], "--radius"),
    (["--train-steps", "0"], "--train-steps"),
])
def test_bad_flags_are_one_line(tmp_path, flags, fragment):
    code, out, err = run_tool("find_duplicates", "--image-root", str(tmp_path), "--out", str(tmp_path / "o"), *flags)
    assert code == 2 and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_missing_folder_is_named(tmp_path):
    code, _, err = run_tool("find_duplicates", "--image-root", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere" in err and "Traceback" not in err


@pytest.mark.slow  # trains a small network
def test_known_groups_are_found_and_reported(tmp_path):
    root = tmp_path / "My Pictures"
    (root / "trip").mkdir(parents=True)
    groups = []
    for g in range(3):  # each picture stored twice with the same pixels: PNG here, BMP in trip/
        picture = cv2.cvtColor(pattern(g), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(root / f"pic {g}.png"), picture)
        cv2.imwrite(str(root / "trip" / f"copy_{g}.BMP"), picture)
        groups.append({f"pic {g}.png", f"trip/copy_{g}.BMP"})
    for s in range(3, 9):
        cv2.imwrite(str(root / f"single_{s}.png"), cv2.cvtColor(pattern(s), cv2.COLOR_RGB2BGR))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    (root / ".thumbs").mkdir()
    cv2.imwrite(str(root / ".thumbs" / "pic 0.png"), pattern(0))  # hidden: never looked at
    out = tmp_path / "report"
    code, stdout, err = run_tool("find_duplicates", "--image-root", str(root), "--out", str(out), "--radius", "0",
                                 "--epochs", "1", "--train-steps", "8")
    assert code == 0, err
    assert "no model given: training cibhash" in err and "1 file under" in err and "left out" in err
    report = json.loads((out / "duplicates.json").read_text(encoding="utf-8"))
    assert report["images"] == 12 and report["radius"] == 0 and report["bit"] == 64
    assert [s["path"] for s in report["skipped"]] == ["broken.jpg"]
    found = [{m["path"] for m in g["members"]} for g in report["groups"]]
    for group in groups:  # identical pixels give identical codes: every true pair is in one group
        assert any(group <= f for f in found), (group, found)
    with open(out / "duplicates.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {(int(r["group"]), r["path"]) for r in rows} == {(n, m["path"]) for n, g in enumerate(report["groups"], 1)
                                                           for m in g["members"]}
    assert sorted(os.listdir(out / "sheets")) == [f"group_{n:04d}.jpg" for n in range(1, len(found) + 1)]
    assert cv2.imread(str(out / "sheets" / "group_0001.jpg")) is not None
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "sheets/group_0001.jpg" in page and "My Pictures" in page
    assert f"{len(found)} groups of near-duplicates" in stdout

    # a second run reuses the model trained on the folder; naming it as --pretrained gives the same groups
    code, _, err = run_tool("find_duplicates", "--image-root", str(root), "--out", str(out), "--radius", "0")
    assert code == 0 and "trained on this folder by an earlier run" in err
    prefix = out / "model" / "model_best_64"
    code, _, err = run_tool("find_duplicates", "--image-root", str(root), "--out", str(tmp_path / "again"),
                            "--radius", "0", "--pretrained", str(prefix), "--bit", "64")
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "duplicates.json").read_text(encoding="utf-8"))
    assert again["groups"] == report["groups"]
