"""docs/own_data.md's three commands, exactly as written (each line through `sh -c`, dash on Debian), on a
folder of real photographs: scikit-learn's and matplotlib's sample photos, each made into a class of
edited copies (crops, mirror images, colour changes, ...), under $HOME/Pictures/album."""
import os
import re
import shutil
import subprocess

import cv2
import pytest

pytestmark = pytest.mark.slow  # trains a network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "<!-- own-data-commands:"


def documented_commands():
    text = open(os.path.join(ROOT, "docs", "own_data.md"), encoding="utf-8").read()
    block = text[text.index(MARKER):]
    body = block[block.index("```bash\n") + len("```bash\n"):]
    return [line for line in body[:body.index("```")].splitlines() if line.strip()]


def real_photographs():
    import matplotlib
    import sklearn

    sample = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    return {"flowers": os.path.join(sample, "flower.jpg"), "city": os.path.join(sample, "china.jpg"),
            "portraits": os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data",
                                      "grace_hopper.jpg")}


def make_album(home):
    import numpy as np

    from benchmarks.near_duplicate_views import KINDS, make_view, original

    rng = np.random.default_rng(0)
    for name, photo in real_photographs().items():
        folder = home / "Pictures" / "album" / name
        folder.mkdir(parents=True)
        image = original(photo)
        for k in range(16):
            view = image if k == 0 else make_view(image, KINDS[k % len(KINDS)], rng)
            cv2.imwrite(str(folder / f"IMG_{k + 1:04d}.jpg"), cv2.cvtColor(view, cv2.COLOR_RGB2BGR))


def test_the_three_commands_run_as_written_on_real_photographs(repo_copy, tmp_path):
    commands = documented_commands()
    assert len(commands) == 3 and "~/Pictures/album" in commands[0], commands
    project = str(tmp_path / "HashNet-Paddle")
    shutil.copytree(repo_copy, project, symlinks=True)  # its own output/ and data/: other tests use repo_copy
    home = tmp_path / "home"
    make_album(home)
    shell = shutil.which("dash") or "/bin/sh"
    env = {**os.environ, "HOME": str(home)}
    env.pop("DISPLAY", None)
    outputs = []
    for command in commands:
        proc = subprocess.run([shell, "-c", command], cwd=project, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-3000:])
        outputs.append(proc.stdout + proc.stderr)
    split, train, search = outputs
    assert os.path.isfile(os.path.join(project, "data", "album", "SHA256SUMS"))
    assert "flowers" in open(os.path.join(project, "data", "album", "classes.txt"), encoding="utf-8").read()
    assert "configs/hashnet_scratch.yaml" in train  # the run says which recipe it picked
    assert os.path.isfile(os.path.join(project, "output", "album", "model_best_64.safetensors"))
    assert "database: 48 images under" in search and "48 encoded" in search
    matches = re.findall(r"^ +\d+ +\d+  (\S+)", search, flags=re.M)
    assert len(matches) == 10, search
    assert all(m.startswith("flowers/") for m in matches[:3]), matches  # the query's own copies come first
