"""The folder walker (utils.data.folders), list lines with quoted paths, EXIF orientation on reading."""
import io
import os

import numpy as np
import pytest

from utils.data.folders import scan_images
from utils.data.images import read_image
from utils.data.lists import format_path, parse_list
from utils.errors import DataError


def test_scan_finds_images_in_any_case_and_skips_hidden_loops_and_dead_links(tmp_path):
    root = tmp_path / "photos"
    (root / "cats" / ".thumbnails").mkdir(parents=True)
    (root / "dogs").mkdir()
    for rel in ("cats/a.JPG", "cats/b.jpeg", "cats/.c.jpg", "cats/.thumbnails/d.png", "dogs/e.TIFF",
                "dogs/f.webp", "dogs/notes.txt", "dogs/my dog.png", "g.bmp", "h.tif", "i.png"):
        (root / rel).write_bytes(b"x")
    os.symlink("..", root / "dogs" / "up")            # a loop back to the root
    os.symlink(root / "cats", root / "cats_again")     # a second way into cats/
    os.symlink(tmp_path / "missing.jpg", root / "dogs" / "gone.jpg")
    scan = scan_images(str(root))
    assert scan.paths == ("cats/a.JPG", "cats/b.jpeg", "dogs/e.TIFF", "dogs/f.webp", "dogs/my dog.png", "g.bmp",
                          "h.tif", "i.png")
    reasons = dict(scan.skipped)
    assert set(reasons) == {"dogs/up", "cats_again", "dogs/gone.jpg"}
    assert "loop" in reasons["dogs/up"] and "nothing" in reasons["dogs/gone.jpg"]


def test_scan_of_a_missing_folder_names_it(tmp_path):
    with pytest.raises(DataError, match="missing: folder not found"):
        scan_images(str(tmp_path / "missing"))


def test_a_path_with_spaces_round_trips_through_a_list_line(tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text(f'{format_path("My Photos/IMG 1.jpg")} 0 1\nplain.jpg 1 0\n  "a  b.png"   1 1\n', encoding="utf-8")
    paths, labels = parse_list(str(lst))
    assert paths == ["My Photos/IMG 1.jpg", "plain.jpg", "a  b.png"]
    assert labels.tolist() == [[0, 1], [1, 0], [1, 1]]
    unlabelled = tmp_path / "u.txt"
    unlabelled.write_text('"x y.jpg"\nz.jpg\n', encoding="utf-8")
    assert parse_list(str(unlabelled))[0] == ["x y.jpg", "z.jpg"]


@pytest.mark.parametrize("line, message", [('"open.jpg 1\n', "no closing double quote"),
                                           ('"" 1\n', "empty"), ('"a.jpg"1\n', "white space expected")])
def test_a_broken_quoted_path_names_the_line(tmp_path, line, message):
    lst = tmp_path / "l.txt"
    lst.write_text("ok.jpg 1\n" + line, encoding="utf-8")
    with pytest.raises(DataError, match=f"l.txt:2: .*{message}"):
        parse_list(str(lst))


def test_format_path_refuses_a_double_quote():
    assert format_path("a.jpg") == "a.jpg"
    with pytest.raises(DataError, match="double quote"):
        format_path('say "cheese".jpg')


def test_exif_orientation_is_applied_when_reading(tmp_path):
    from PIL import Image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif, quality=95)
    path = tmp_path / "portrait.jpg"
    path.write_bytes(buf.getvalue())
    upright = read_image(str(path))
    assert upright.shape == (40, 20, 3)
    # the white left half of the stored picture is the top half once turned clockwise
    assert upright[:18].mean() > 200 and upright[22:].mean() < 50
