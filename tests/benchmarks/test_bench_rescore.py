"""benchmarks/bench_rescore.py: its ranking mAP equals utils.evaluation's on Hamming rankings, its
rescored rankings permute the candidates (the first N and their ties) only; end to end on one epoch (marked benchmark)."""
import numpy as np
import pytest

from benchmarks import bench_rescore
from utils.encoding import sign_codes
from utils.evaluation.metrics import mean_average_precision
from utils.retrieval.rescore import TIE_CAP_FACTOR, Int8Features


def data(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 16))
    q_cls, db_cls = rng.integers(0, 4, 30), rng.integers(0, 4, 200)
    q_f = (centres[q_cls] + rng.standard_normal((30, 16))).astype(np.float32)
    db_f = (centres[db_cls] + rng.standard_normal((200, 16))).astype(np.float32)
    return q_f, db_f, np.eye(4, dtype=np.int8)[q_cls], np.eye(4, dtype=np.int8)[db_cls]


def test_ranking_map_equals_the_project_metric_on_hamming_rankings():
    q_f, db_f, q_l, db_l = data()
    q_c, db_c = sign_codes(q_f), sign_codes(db_f)
    order = bench_rescore.hamming_order(q_c, db_c)
    assert bench_rescore.map_of_rankings(order, q_l, db_l) == pytest.approx(
        mean_average_precision(q_c, db_c, q_l, db_l), abs=1e-12)


def test_rescored_rankings_permute_the_candidates_only_and_help_here():
    """Candidates of top-50: the first 50 and every item at the 50th one's distance (at most the cap),
    counted here from the distances; the rest of each ranking keeps its Hamming order."""
    q_f, db_f, q_l, db_l = data(1)
    q_c, db_c = sign_codes(q_f), sign_codes(db_f)
    distances = bench_rescore.hamming_distances(q_c, db_c)
    order = bench_rescore.hamming_order(q_c, db_c)
    counts = bench_rescore.candidate_counts(order, distances, 50)
    for q, m in enumerate(counts):
        cut = np.sort(distances[q])[49]
        assert m == min(int((distances[q] <= cut).sum()), 50 * TIE_CAP_FACTOR)
    assert (counts > 50).any()                                   # 16-bit codes of 200 items: ties at the cut
    for got in (bench_rescore.rescored_order(order, q_f, Int8Features.quantize(db_f), counts),
                bench_rescore.rescored_order_fp32(order, q_f, db_f, counts)):
        for a, b, m in zip(got, order, counts):
            np.testing.assert_array_equal(a[m:], b[m:])
            assert set(a[:m]) == set(b[:m])
        assert bench_rescore.map_of_rankings(got, q_l, db_l) > bench_rescore.map_of_rankings(order, q_l, db_l)
    first = bench_rescore.candidate_counts(order, distances, 50, ties=False)
    assert (first == 50).all()


@pytest.mark.benchmark
def test_one_epoch_end_to_end(tmp_path, capsys):
    assert bench_rescore.main(["--bits", "16", "--epochs", "1", "--candidates", "20", "--data-dir",
                               str(tmp_path / "digits"), "--output-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "int8 store" in out and "(0.25" in out
    for name in ("hamming", "rescored 20 int8", "rescored 20 fp32", "first 20 int8", "float cosine"):
        assert f"  {name} " in out
    assert "  candidates of top 20: mean " in out
