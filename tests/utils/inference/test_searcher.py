"""utils.inference.searcher: the Searcher behind predict.py and the service, with a stand-in encoder
(a fixed random projection of the pixels), against a pair-by-pair reference written here."""
import os

import numpy as np
import pytest

from utils.data.images import read_image
from utils.data.lists import parse_list
from utils.data.transforms import build_transform
from utils.inference.encoders import EncoderBase
from utils.inference.searcher import ListSource, Searcher
from utils.retrieval.rescore import TIE_CAP_FACTOR

BIT = 16


class Projection(EncoderBase):
    """Pre-sign features = flattened preprocessed pixels @ a seeded Gaussian matrix."""

    bit = BIT
    preprocess = {"resize_size": 72, "crop_size": 64, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    fingerprint = "projection-seed-0"

    def __init__(self):
        self.w = np.random.default_rng(0).standard_normal((3 * 64 * 64, BIT)).astype(np.float32)

    def features(self, images):
        return np.asarray(images, np.float32).reshape(len(images), -1) @ self.w


def ranked(code, codes):
    """(distance, index) of every database code, pair by pair, ties to the lower index."""
    return sorted((int(sum(a != b for a, b in zip(code, c))), i) for i, c in enumerate(codes))


@pytest.fixture
def searcher(tiny_lite, tmp_path):
    source = ListSource(os.path.join(tiny_lite, "database.txt"), tiny_lite, str(tmp_path / "cache"))
    return Searcher(Projection(), [source], backend="numpy", num_workers=0, log=lambda *a: None)


def test_top_k_and_radius_equal_the_reference(searcher, tiny_lite):
    paths, labels = parse_list(os.path.join(tiny_lite, "database.txt"))
    transform = build_transform(False, **Projection.preprocess)
    db_codes = np.stack([Projection().encode(transform(read_image(os.path.join(tiny_lite, p)))[None]).codes[0]
                         for p in paths])
    assert len(searcher) == len(paths) and searcher.num_classes == labels.shape[1]
    query = read_image(os.path.join(tiny_lite, "images", "test", "00000.jpg"))
    code = searcher.encode_images([query]).codes
    expected = ranked(code[0], db_codes)
    result = searcher.search(code, k=7)
    assert [(m.distance, m.index) for m in result.matches] == expected[:7]
    assert [m.rank for m in result.matches] == list(range(1, 8)) and result.within_radius is None
    first = result.matches[0]
    assert (first.path, first.source) == (paths[first.index], "data")
    np.testing.assert_array_equal(first.labels, labels[first.index])
    assert searcher.image_path(first) == os.path.join(os.path.abspath(tiny_lite), paths[first.index])
    radius = expected[10][0]
    within = [(d, i) for d, i in expected if d <= radius]
    capped = searcher.search(code, k=3, radius=radius)
    assert capped.within_radius == len(within) and [(m.distance, m.index) for m in capped.matches] == within[:3]
    everything = searcher.search(code, k=None, radius=radius)
    assert [(m.distance, m.index) for m in everything.matches] == within


def test_the_database_codes_are_cached_and_entries_can_be_added(searcher, tiny_lite, tmp_path):
    said = []
    source = ListSource(os.path.join(tiny_lite, "database.txt"), tiny_lite, str(tmp_path / "cache"))
    again = Searcher(Projection(), [source], backend="numpy", num_workers=0, log=said.append)
    assert len(said) == 1 and "cache up to date" in said[0]
    np.testing.assert_array_equal(again.index.packed_codes(), searcher.index.packed_codes())
    code = np.where(np.arange(BIT) % 2 == 0, 1, -1).astype(np.int8)[None]
    added = again.append("added", ["x.jpg"], [np.zeros(again.num_classes)], code)
    assert list(added) == [len(searcher)] and again.entry(added[0])[:2] == ("added", "x.jpg")
    top = again.search(code, k=1).matches[0]
    assert (top.distance, top.source, top.path) == (0, "added", "x.jpg")
    paths, labels = parse_list(os.path.join(tiny_lite, "database.txt"))
    np.testing.assert_array_equal(again.labels_of(paths[5]), labels[5])
    assert again.labels_of("nope.jpg") is None


def test_rescoring_reorders_only_the_hamming_candidates_by_feature_cosine(searcher, tiny_lite, tmp_path):
    """rescore=N: the top-k are the N nearest codes and their ties (the pair-by-pair reference) re-ranked by the cosine
    of float features computed here; the features come from the code cache, written beside the codes
    (the plain searcher's cache already holds them: no second encoding)."""
    said = []
    source = ListSource(os.path.join(tiny_lite, "database.txt"), tiny_lite, str(tmp_path / "cache"))
    rescoring = Searcher(Projection(), [source], backend="numpy", num_workers=0, log=said.append, rescore=12)
    assert len(said) == 1 and "cache up to date" in said[0]
    assert rescoring.features.values.dtype == np.int8 and len(rescoring.features) == len(searcher)
    paths, _ = parse_list(os.path.join(tiny_lite, "database.txt"))
    transform = build_transform(False, **Projection.preprocess)
    db = Projection().encode(np.stack([transform(read_image(os.path.join(tiny_lite, p))) for p in paths]))
    query = searcher.encode_images([read_image(os.path.join(tiny_lite, "images", "test", "00001.jpg"))])
    reference = ranked(query.codes[0], db.codes)               # the 12 nearest and their ties at the 12th distance
    candidates = [i for d, i in reference if d <= reference[11][0]][:12 * TIE_CAP_FACTOR]
    cos = {i: float(db.features[i] @ query.features[0]) / float(np.linalg.norm(db.features[i])
                                                                  * np.linalg.norm(query.features[0]))
           for i in candidates}
    result = rescoring.search(query.codes, k=5, features=query.features[0])
    got = [m.index for m in result.matches]
    assert set(got) <= set(candidates) and len(got) == 5
    for m in result.matches:
        assert abs(m.score - cos[m.index]) < 0.02                  # int8 features: within the quantisation error
    by_float = sorted(candidates, key=lambda i: -cos[i])
    assert got == by_float[:5] or max(abs(cos[a] - cos[b]) for a, b in zip(got, by_float[:5])) < 0.02
    plain = searcher.search(query.codes, k=5)
    assert [m.score for m in plain.matches] == [None] * 5          # rescore=0: the Hamming answer, as before
    with pytest.raises(ValueError, match="features"):
        rescoring.search(query.codes, k=5)


def test_rescoring_takes_in_the_ties_at_the_nth_distance_up_to_the_cap():
    """rescore=3, k=3 over one code at distance 0 and many tied at distance 1: the tie is not cut by
    index, so the best by features (index 9) wins though it is not among the first three; past the
    cap (3 x TIE_CAP_FACTOR candidates) the tie is cut by index, so the first item past it is never
    rescored even when its features are the query's own."""
    n = 3
    query_code = np.ones((1, BIT), np.int8)
    near = query_code.copy()
    near[0, 0] = -1                                            # distance 1
    beyond = n * TIE_CAP_FACTOR                                # the first tie past the cap
    count = beyond + 2
    codes = np.concatenate([query_code, np.repeat(near, count - 1, axis=0)])
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((count, BIT)).astype(np.float32)
    query = rng.standard_normal(BIT).astype(np.float32)
    feats[9], feats[beyond] = query + 0.05, query              # 9: near the query; beyond: the query itself
    searcher = Searcher(Projection(), [], backend="numpy", rescore=n, log=lambda *a: None)
    searcher.append("data", [f"{i}.jpg" for i in range(count)], np.zeros((count, 1)), codes, feats)
    result = searcher.search(query_code, k=n, features=query)
    assert result.matches[0].index == 9 and result.matches[0].distance == 1
    cos = feats @ query / (np.linalg.norm(feats, axis=1) * np.linalg.norm(query))
    expected = sorted(range(beyond), key=lambda i: -cos[i])[:n]  # the candidates: indices 0 .. beyond - 1
    assert [m.index for m in result.matches] == expected and beyond not in expected


def test_an_empty_radius_answer_says_how_far_the_nearest_is(searcher, tiny_lite):
    paths, _ = parse_list(os.path.join(tiny_lite, "database.txt"))
    transform = build_transform(False, **Projection.preprocess)
    db_codes = [Projection().encode(transform(read_image(os.path.join(tiny_lite, p)))[None]).codes[0] for p in paths]
    # a query code no database code is within 0 of: the first database code with every bit flipped
    code = -db_codes[0][None]
    nearest = ranked(code[0], db_codes)[0][0]
    assert nearest > 0
    empty = searcher.search(code, k=None, radius=nearest - 1)
    assert empty.within_radius == 0 and empty.matches == [] and empty.nearest_distance == nearest
    found = searcher.search(code, k=None, radius=nearest)
    assert found.within_radius >= 1 and found.nearest_distance is None
    assert searcher.search(code, k=5).nearest_distance is None


def test_class_names_come_from_classes_txt_beside_the_lists(tiny_lite, tmp_path):
    """The split tools write classes.txt beside the lists (data/<name>/), not in the image root."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "database.txt").write_text(open(os.path.join(tiny_lite, "database.txt")).read())
    _, labels = parse_list(os.path.join(tiny_lite, "database.txt"))
    names = [f"class-{i}" for i in range(labels.shape[1])]
    (lists / "classes.txt").write_text("".join(f"{n}\n" for n in names))
    source = ListSource(str(lists / "database.txt"), tiny_lite, str(tmp_path / "cache"))
    searcher = Searcher(Projection(), [source], backend="numpy", num_workers=0, log=lambda *a: None)
    assert searcher.class_names == names
