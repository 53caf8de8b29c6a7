"""benchmarks/near_duplicates.py: its leave-one-out mAP and pair scores against slow references, and a small
run of the imagehash rows on real photographs (scikit-learn's and matplotlib's), which needs no training."""
import itertools

import numpy as np
import pytest

from benchmarks import near_duplicates as nd


def slow_loo_map(codes, sources):
    """Each code queries all the others, ranked by (Hamming distance, index): the mean of the APs."""
    aps = []
    for i in range(len(codes)):
        others = [j for j in range(len(codes)) if j != i]
        ranked = sorted(others, key=lambda j: (int((codes[i] != codes[j]).sum()), j))
        hits, precisions = 0, []
        for rank, j in enumerate(ranked, 1):
            if sources[j] == sources[i]:
                hits += 1
                precisions.append(hits / rank)
        if precisions:
            aps.append(sum(precisions) / len(precisions))
    return sum(aps) / len(aps)


def test_scores_match_slow_references():
    rng = np.random.default_rng(0)
    sources = np.repeat(np.arange(5), 4)
    base = np.where(rng.random((5, 64)) < 0.5, 1, -1)
    codes = np.where(rng.random((20, 64)) < 0.1, -base[sources], base[sources]).astype(np.int8)
    got = nd.scores(codes, sources, radius=8)
    assert got["map"] == pytest.approx(slow_loo_map(codes, sources))
    pairs = [(i, j) for i, j in itertools.combinations(range(20), 2) if int((codes[i] != codes[j]).sum()) <= 8]
    hits = sum(sources[i] == sources[j] for i, j in pairs)
    assert got["precision"] == pytest.approx(hits / len(pairs)) and got["recall"] == pytest.approx(hits / 30)
    assert got["best_f1"] >= got["f1"]


@pytest.mark.slow  # decodes real photographs and writes their copies
def test_imagehash_rows_on_real_photographs(tmp_path, capsys):
    photos = nd.default_photos()[:2]  # scikit-learn's two photographs and matplotlib's grace_hopper.jpg
    assert nd.main(["--photos", *photos, "--methods", "phash", "dhash", "--views", "4", "--output-dir",
                    str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU:") and "3 photographs" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("phash ", "dhash "))}
    assert set(rows) == {"phash", "dhash"}
    assert 0.3 < float(rows["phash"][2]) <= 1.0  # mAP@all of 12 copies of 3 photos
    assert (tmp_path / "near_duplicates.md").is_file() and (tmp_path / "runs.jsonl").is_file()
