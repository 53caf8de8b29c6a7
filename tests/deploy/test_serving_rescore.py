"""The search service with --rescore: top-k answers re-ranked by the cosine of the images' features
(with the score), radius searches refused, and the added images' features kept across restarts;
against a reference computed here image by image (Hamming pair by pair, float64 cosines)."""
import os
import pathlib

import numpy as np
import pytest
from fastapi.testclient import TestClient

from deploy.serving import cli
from deploy.serving.app import create_app
from deploy.serving.service import SearchService, ServiceSettings
from tests.deploy.conftest import BIT, db_list
from utils.data.lists import parse_list
from utils.data.transforms import preprocess_image
from utils.inference.encoders import InferenceEncoder
from utils.inference.searcher import ListSource, SearchSettings
from utils.retrieval.rescore import TIE_CAP_FACTOR

pytestmark = pytest.mark.slow

N = 6  # --rescore 6


def rescoring_service(model, data, tmp, rescore=N, log=lambda *a: None):
    search = SearchSettings(bit=None, model_dir=model, database=ListSource(db_list(data), data, str(tmp / "cache")),
                            cache_dir=str(tmp / "cache"), threads=1, predictors=1, num_workers=0, rescore=rescore)
    return SearchService(ServiceSettings(search, str(tmp / "store")), log)


def client_of(service):
    return TestClient(create_app(service), base_url="http://localhost")


def upload(path):
    with open(path, "rb") as f:
        return {"file": (os.path.basename(path), f.read(), "application/octet-stream")}


@pytest.fixture(scope="module")
def reference(serving_model, serving_data):
    """Features and codes of every database image, one image at a time."""
    encoder = InferenceEncoder(serving_model, BIT, cpu_threads=1)
    paths, _ = parse_list(db_list(serving_data))
    encoded = [encoder.encode(preprocess_image(os.path.join(serving_data, p), **encoder.preprocess)[None])
               for p in paths]
    return {"encoder": encoder, "paths": paths, "codes": np.concatenate([e.codes for e in encoded]),
            "features": np.concatenate([e.features for e in encoded]).astype(np.float64)}


def expected(reference, path, k):
    """The candidates of top-max(k, N) rescoring (the nearest and their ties at the last one's distance,
    at most TIE_CAP_FACTOR times as many), each one's distance, and the float64 cosines."""
    encoder = reference["encoder"]
    query = encoder.encode(preprocess_image(path, **encoder.preprocess)[None])
    q_code, q_feat = query.codes[0], query.features[0].astype(np.float64)
    pairs = sorted((sum(int(a != b) for a, b in zip(q_code, code)), i) for i, code in enumerate(reference["codes"]))
    n = max(k, N)
    candidates = {i: d for d, i in pairs if d <= pairs[n - 1][0]}
    candidates = dict(list(candidates.items())[:n * TIE_CAP_FACTOR])
    feats = reference["features"]
    cos = feats @ q_feat / (np.linalg.norm(feats, axis=1) * np.linalg.norm(q_feat))
    return candidates, cos


@pytest.fixture(scope="module")
def service(serving_model, serving_data, tmp_path_factory):
    return rescoring_service(serving_model, serving_data, tmp_path_factory.mktemp("rescore"))


def test_top_k_is_reranked_by_feature_cosine_with_the_score(service, reference, serving_data):
    client = client_of(service)
    assert client.get("/stats").json()["rescore"] == N
    test_paths, _ = parse_list(os.path.join(serving_data, "test.txt"))
    queries = [os.path.join(serving_data, p) for p in test_paths[:3] + reference["paths"][:2]]
    for path in queries:
        body = client.post("/search", files=upload(path), data={"k": "4"}).json()
        candidates, cos = expected(reference, path, 4)
        got = [m["index"] for m in body["matches"]]
        assert body["rescore"] == N and len(got) == 4 and set(got) <= set(candidates)
        for m in body["matches"]:
            assert m["distance"] == candidates[m["index"]]         # each keeps its own Hamming distance
            assert abs(m["score"] - cos[m["index"]]) < 0.02        # int8 features: within the quantisation error
        assert [m["score"] for m in body["matches"]] == sorted((m["score"] for m in body["matches"]), reverse=True)
        by_float = sorted(candidates, key=lambda i: -cos[i])[:4]
        assert got == by_float or max(abs(cos[a] - cos[b]) for a, b in zip(got, by_float)) < 0.02
    own = client.post("/search", files=upload(queries[-1]), data={"k": "1"}).json()["matches"][0]
    assert own["index"] == 1 and own["distance"] == 0 and own["score"] > 0.999  # a database image finds itself


def test_a_radius_search_is_refused_and_a_plain_service_has_no_score(service, serving_model, serving_data,
                                                                   reference, tmp_path):
    path = os.path.join(serving_data, reference["paths"][0])
    response = client_of(service).post("/search", files=upload(path), data={"k": "4", "radius": "3"})
    assert response.status_code == 400 and "radius" in response.json()["detail"] \
        and "--rescore" in response.json()["detail"]
    plain = client_of(rescoring_service(serving_model, serving_data, tmp_path, rescore=0))
    body = plain.post("/search", files=upload(path), data={"k": "4"}).json()
    assert body["rescore"] == 0 and all("score" not in m for m in body["matches"])


def test_added_images_keep_their_features_across_restarts(serving_model, serving_data, reference, tmp_path):
    """A store written by a plain service (codes only) is encoded again once for rescoring; images
    added while rescoring are found by their features, and a restart reads them from the cache."""
    test_paths, _ = parse_list(os.path.join(serving_data, "test.txt"))
    first, second = (os.path.join(serving_data, p) for p in test_paths[:2])
    plain = rescoring_service(serving_model, serving_data, tmp_path, rescore=0)
    client_of(plain).post("/items", files={"files": ("a.jpg", pathlib.Path(first).read_bytes(), "image/jpeg")})
    said = []
    service = rescoring_service(serving_model, serving_data, tmp_path, log=said.append)
    assert any("no features cached" in line for line in said)  # the added image, encoded again once
    client = client_of(service)
    client.post("/items", files={"files": ("b.jpg", pathlib.Path(second).read_bytes(), "image/jpeg")})
    assert os.path.isfile(tmp_path / "store" / "codes" / f"database_code_{BIT}_features.npy")
    said.clear()
    restarted = client_of(rescoring_service(serving_model, serving_data, tmp_path, log=said.append))
    assert sum("cache up to date" in line for line in said) == 2 and not any("encoding" in line for line in said)
    for path, index in ((first, 48), (second, 49)):
        for c in (client, restarted):
            top = c.post("/search", files=upload(path), data={"k": "3"}).json()["matches"][0]
            assert (top["index"], top["source"], top["distance"]) == (index, "added", 0) and top["score"] > 0.99


def test_the_flag_is_checked_before_the_model_is_loaded(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--rescore", "-1"])
    assert "--rescore must be >= 0" in capsys.readouterr().err
    config = tmp_path / "index.yaml"
    config.write_text("IndexProcess:\n  index_method: FLAT\n  dist_type: hamming\n  hamming_radius: 2\n")
    with pytest.raises(SystemExit):
        cli.parse_args(["--rescore", "100", "--index-config", str(config)])
    assert "hamming_radius" in capsys.readouterr().err
    assert cli.parse_args(["--rescore", "100"]).rescore == 100


@pytest.mark.browser
def test_the_page_of_a_rescoring_service_shows_the_cosine_and_a_radius_error(serving_model, serving_data, tmp_path):
    """`python -m deploy.serving --rescore 6` in its own process, its page in headless Chromium: the
    stats line says it rescores, each match shows its cosine (the API's score), and a radius gets the
    400's one line on the page instead of results."""
    from tests.deploy.test_serving_e2e import CHROMIUM, FLAGS, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    from deploy.serving.launch import running_service

    paths, _ = parse_list(db_list(serving_data))
    flags = ["--model-dir", serving_model, "--data-path", serving_data, "--list-dir", serving_data, "--cache-dir",
             str(tmp_path / "cache"), "--store-dir", str(tmp_path / "store"), "--num-workers", "0", "--threads", "1",
             "--log-level", "warning", "--rescore", str(N)]
    with running_service(flags, cwd=str(tmp_path)) as url, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       headless=True, args=FLAGS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(url)
            page.wait_for_function(f"() => document.querySelector('#stats').textContent.includes('rescoring the {N}')")
            page.set_input_files("#file", os.path.join(serving_data, paths[0]))
            first = page.locator("#matches .match").first
            first.wait_for(timeout=20_000)
            assert page.locator("#matches .match").count() == 10
            assert first.get_attribute("data-path") == paths[0] and "d = 0" in first.inner_text()
            assert "cos 1.000" in first.inner_text()
            page.fill("#radius", "2")
            page.dispatch_event("#radius", "change")
            page.wait_for_function("() => document.querySelector('#status').textContent.includes('error 400')")
            assert "--rescore" in page.inner_text("#status") and page.locator("#matches .match").count() == 0
        finally:
            context.close()
