"""The --show picture of predict.py (the query beside its matches, with labels and distances) and the
contact sheet of a group of near-duplicates (tools.find_duplicates)."""
import os

import cv2
import numpy as np

from utils.data.images import read_image
from utils.storage.fileio import atomic_write_bytes

TILE = 160


def _tile(path, caption_lines, border):
    image = cv2.resize(read_image(path), (TILE, TILE), interpolation=cv2.INTER_AREA)
    image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    canvas = np.full((TILE + 18 * len(caption_lines) + 8, TILE + 8, 3), 255, np.uint8)
    canvas[4:4 + TILE, 4:4 + TILE] = image
    cv2.rectangle(canvas, (1, 1), (TILE + 6, TILE + 6), border, 3)
    for i, line in enumerate(caption_lines):
        cv2.putText(canvas, line[:22], (4, TILE + 22 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas


def draw_matches(query_path, query_caption, matches, out_path, per_row=5):
    """matches: [(path, distance, label text, relevant or None)]. Writes a JPEG, returns its path."""
    tiles = [_tile(query_path, ["query"] + [w for c in query_caption for w in c.split(",")], (255, 120, 0))]
    for rank, (path, distance, labels, relevant) in enumerate(matches, 1):
        colour = (128, 128, 128) if relevant is None else ((0, 170, 0) if relevant else (0, 0, 220))
        tiles.append(_tile(path, [f"#{rank} distance {distance}"] + labels.split(","), colour))
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles]
    query_row = tiles[0]
    rows = [np.concatenate(tiles[1 + i:1 + i + per_row] + [np.full_like(tiles[0], 255)] *
                           max(0, per_row - len(tiles[1 + i:1 + i + per_row])), axis=1)
            for i in range(0, max(1, len(tiles) - 1), per_row)] if len(tiles) > 1 else []
    grid = np.concatenate(rows, axis=0) if rows else np.full_like(query_row, 255)
    query_col = np.pad(query_row, ((0, max(0, grid.shape[0] - query_row.shape[0])), (0, 20), (0, 0)),
                       constant_values=255)
    grid = np.pad(grid, ((0, max(0, query_col.shape[0] - grid.shape[0])), (0, 0), (0, 0)), constant_values=255)
    picture = np.concatenate([query_col, grid], axis=1)
    ok, jpeg = cv2.imencode(".jpg", picture)
    if not ok:
        raise RuntimeError(f"cannot encode the picture for {out_path}")
    atomic_write_bytes(out_path, jpeg.tobytes())  # a failed write is an error naming the file, never silent
    return out_path


def draw_group(paths, captions, out_path, per_row=6):
    """A contact sheet: the images of `paths` (a caption line list each) in rows of per_row, as a
    JPEG written atomically; an image that cannot be read any more is a grey tile saying so."""
    from utils.errors import DataError

    tiles = []
    for path, caption in zip(paths, captions):
        try:
            tiles.append(_tile(path, caption, (128, 128, 128)))
        except DataError:
            blank = np.full((TILE + 18 * len(caption) + 8, TILE + 8, 3), 200, np.uint8)
            cv2.putText(blank, "unreadable", (20, TILE // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(blank)
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles]
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % per_row if len(tiles) > per_row else 0)
    rows = [np.concatenate(tiles[i:i + per_row], axis=1) for i in range(0, len(tiles), per_row)]
    ok, jpeg = cv2.imencode(".jpg", np.concatenate(rows, axis=0))
    if not ok:
        raise RuntimeError(f"cannot encode the picture for {out_path}")
    atomic_write_bytes(out_path, jpeg.tobytes())
    return out_path


def try_display(path):
    """Show the picture when a display exists (opencv-python-headless has no GUI: then just skip)."""
    if not os.environ.get("DISPLAY"):
        return False
    try:
        cv2.imshow("HashNet retrieval", cv2.imread(path))
        cv2.waitKey(0)
        cv2.destroyAllWindows()
        return True
    except cv2.error:
        return False
