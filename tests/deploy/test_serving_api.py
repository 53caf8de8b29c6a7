"""The HTTP API in-process (fastapi TestClient): answers against slow references, persistence,
limits, path traversal, concurrency."""
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from deploy.serving.app import create_app
from deploy.serving.service import SearchService, ServiceSettings
from deploy.serving.uploads import Limits
from tests.deploy.conftest import BIT, db_list
from utils.data.lists import parse_list
from utils.data.transforms import preprocess_image
from utils.storage.weights import read_weights
from utils.inference.encoders import InferenceEncoder
from utils.inference.searcher import ListSource, SearchSettings
from utils.storage.weights import weights_digest

pytestmark = pytest.mark.slow

def local_client(service):
    """The app as the browser on this machine reaches it (the Host allow-list has localhost)."""
    return TestClient(create_app(service), base_url="http://localhost")


def make_service(model, data, tmp, log=lambda *a: None, predictors=1, **kw):
    """A service over the export `model` and the data set `data`, its cache and store in tmp."""
    search = SearchSettings(bit=None, model_dir=model, database=ListSource(db_list(data), data, str(tmp / "cache")),
                            cache_dir=str(tmp / "cache"), threads=1, predictors=predictors, num_workers=0)
    return SearchService(ServiceSettings(search, str(tmp / "store"), **kw), log)


@pytest.fixture(scope="module")
def service(serving_model, serving_data, tmp_path_factory):
    return make_service(serving_model, serving_data, tmp_path_factory.mktemp("api"), predictors=2)


@pytest.fixture(scope="module")
def client(service):
    return local_client(service)


@pytest.fixture(scope="module")
def reference(serving_model, serving_data):
    """Codes of every database image, one image at a time, straight from utils.inference."""
    encoder = InferenceEncoder(serving_model, BIT, cpu_threads=1)
    paths, labels = parse_list(db_list(serving_data))
    codes = np.concatenate([encoder.encode_batch(preprocess_image(os.path.join(serving_data, p),
                                                                  **encoder.preprocess)[None]) for p in paths])
    return {"encoder": encoder, "paths": paths, "labels": labels, "codes": codes}


def upload(path):
    with open(path, "rb") as f:
        return {"file": (os.path.basename(path), f.read(), "application/octet-stream")}


def ranked(query_code, codes):
    """Slow reference: (distance, index) of every database code, pair by pair, ties by index."""
    pairs = [(sum(int(a != b) for a, b in zip(query_code, code)), i) for i, code in enumerate(codes)]
    return sorted(pairs)


def png_bytes(height, width):
    ok, buf = cv2.imencode(".png", np.full((height, width, 3), 128, np.uint8))
    return buf.tobytes()


def test_healthz_and_stats(client, serving_model, serving_data):
    assert client.get("/healthz").json() == {"status": "ok"}
    stats = client.get("/stats").json()
    untrained = os.path.join(os.path.dirname(serving_model), f"untrained_{BIT}")  # the weights it was exported from
    assert stats["database_size"] == stats["data_set_images"] == 48 and stats["added_images"] == 0
    assert stats["bit"] == BIT and stats["model_fingerprint"] == weights_digest(read_weights(untrained)[0])
    assert stats["index_backend"] == "auto" and stats["index_plan"] and stats["predictors"] == 2
    assert stats["classes"] == open(os.path.join(serving_data, "classes.txt")).read().split()


def test_search_ranks_like_a_pair_by_pair_reference(client, reference, serving_data):
    for i in (0, 7, 30):
        path = os.path.join(serving_data, reference["paths"][i])
        body = client.post("/search", files=upload(path), data={"k": "12"}).json()
        expected = ranked(reference["codes"][i], reference["codes"])[:12]
        assert [(m["distance"], m["index"]) for m in body["matches"]] == expected
        assert body["matches"][0]["distance"] == 0 and body["database_size"] == 48
        first = body["matches"][0]
        assert first["path"] == reference["paths"][first["index"]] and first["url"] == "/images/" + first["path"]
        assert first["labels"] == [client.get("/stats").json()["classes"][c]
                                   for c in np.flatnonzero(reference["labels"][first["index"]])]
    # database image 0 is its own first match (distance 0, and ties go to the lower index)
    body = client.post("/search", files=upload(os.path.join(serving_data, reference["paths"][0]))).json()
    assert body["matches"][0]["path"] == reference["paths"][0] and body["matches"][0]["distance"] == 0
    assert len(body["matches"]) == 10  # default k


def test_every_database_image_finds_itself_at_distance_0(client, reference, serving_data):
    for i, rel in enumerate(reference["paths"]):
        body = client.post("/search", files=upload(os.path.join(serving_data, rel)), data={"k": "48", "radius": "0"}).json()
        assert i in [m["index"] for m in body["matches"]] and {m["distance"] for m in body["matches"]} == {0}


def test_radius_filter(client, reference, serving_data):
    query = reference["codes"][5]
    path = os.path.join(serving_data, reference["paths"][5])
    pairs = ranked(query, reference["codes"])
    for radius in (0, 20, 28, 64):
        within = [p for p in pairs if p[0] <= radius]
        body = client.post("/search", files=upload(path), data={"k": "100", "radius": str(radius)}).json()
        assert [(m["distance"], m["index"]) for m in body["matches"]] == within
        assert body["within_radius"] == len(within) and body["radius"] == radius
    assert len(within) == 48  # radius 64 = everything
    radius = 28  # k caps the matches shown, within_radius still counts all
    body = client.post("/search", files=upload(path), data={"k": "3", "radius": str(radius)}).json()
    assert [(m["distance"], m["index"]) for m in body["matches"]] == [p for p in pairs if p[0] <= radius][:3]
    assert body["within_radius"] == sum(p[0] <= radius for p in pairs)


def test_encode_agrees_with_utils_inference(client, reference, serving_data):
    for i in (0, 11, 47):
        body = client.post("/encode", files=upload(os.path.join(serving_data, reference["paths"][i]))).json()
        expected = "".join("1" if b > 0 else "0" for b in reference["codes"][i])
        assert body["bits"] == expected and body["bit"] == BIT
        assert body["hex"] == f"{int(expected, 2):016x}"
    # a query image that is in no list encodes the same way too
    test_paths, _ = parse_list(os.path.join(serving_data, "test.txt"))
    path = os.path.join(serving_data, test_paths[0])
    code = reference["encoder"].encode_batch(preprocess_image(path, **reference["encoder"].preprocess)[None])[0]
    assert client.post("/encode", files=upload(path)).json()["bits"] == "".join("1" if b > 0 else "0" for b in code)


def test_bad_uploads_get_4xx_with_a_message(serving_model, serving_data, tmp_path, reference):
    small = make_service(serving_model, serving_data, tmp_path, limits=Limits(max_bytes=20_000, max_pixels=100 * 100,
                                                                             max_k=5), read_only=True)
    client = local_client(small)
    jpeg = upload(os.path.join(serving_data, reference["paths"][0]))
    cases = [  # (route, files, form, status, words in the message)
        ("/search", {"file": ("a.jpg", b"", "image/jpeg")}, {}, 400, "empty"),
        ("/search", {"file": ("a.txt", b"hello, not an image", "text/plain")}, {}, 415, "not an image"),
        ("/search", {"file": ("a.jpg", jpeg["file"][1][:1500], "image/jpeg")}, {}, 415, "cannot decode"),
        ("/encode", {"file": ("big.png", png_bytes(101, 100), "image/png")}, {}, 413, "--max-pixels"),
        ("/search", {"file": ("big.bin", b"\xff" * 30_000, "image/jpeg")}, {}, 413, "--max-upload-mb"),
        ("/search", {"file": ("big.bin", b"\xff" * 200_000, "image/jpeg")}, {}, 413, "--max-upload-mb"),
        ("/search", None, {"k": "3"}, 400, "multipart form field 'file'"),
        ("/encode", None, {}, 400, "multipart form field 'file'"),
        ("/search", jpeg, {"k": "0"}, 400, "--max-k"),
        ("/search", jpeg, {"k": "6"}, 400, "--max-k"),
        ("/search", jpeg, {"k": "ten"}, 422, "k:"),
        ("/search", jpeg, {"radius": "-1"}, 400, "radius"),
        ("/search", jpeg, {"radius": "65"}, 400, "radius"),
        ("/items", {"files": jpeg["file"]}, {}, 403, "--read-only"),
    ]
    for route, files, form, status, words in cases:
        response = client.post(route, files=files, data=form)
        assert response.status_code == status, (route, form, response.text)
        assert words in response.json()["detail"], (route, response.json())
    assert client.post("/search", files={"file": ("ok.png", png_bytes(100, 100))}).status_code == 200

    def chunks():  # no Content-Length: refused once the bytes received pass the limit
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        for _ in range(20):
            yield b"x" * 10_000

    response = client.post("/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and "larger than the limit" in response.json()["detail"]
    assert client.get("/stats").json()["database_size"] == 48


def test_items_are_added_persisted_and_survive_a_restart(serving_model, serving_data, tmp_path, reference):
    service = make_service(serving_model, serving_data, tmp_path)
    client = local_client(service)
    test_paths, _ = parse_list(os.path.join(serving_data, "test.txt"))
    new = [os.path.join(serving_data, p) for p in test_paths[:2]]
    blobs = [open(p, "rb").read() for p in new]
    response = client.post("/items", files=[("files", (os.path.basename(p), b, "image/jpeg")) for p, b in zip(new, blobs)],
                           data={"labels": "red_circle, 3"})
    assert response.status_code == 200, response.text
    added = response.json()["added"]
    assert [a["index"] for a in added] == [48, 49] and response.json()["database_size"] == 50
    assert client.get(added[1]["url"]).content == blobs[1]  # stored byte for byte, served from the store
    assert not [n for _, _, names in os.walk(tmp_path / "store") for n in names if n.endswith(".tmp")]
    classes = client.get("/stats").json()["classes"]

    def found(client):
        body = client.post("/search", files=upload(new[1]), data={"k": "50", "radius": "0"}).json()
        return {m["index"]: m for m in body["matches"]}

    match = found(client)[49]
    assert match["distance"] == 0 and match["source"] == "added" and match["labels"] == sorted(
        ["red_circle", classes[3]], key=classes.index)
    before = client.post("/encode", files=upload(new[1])).json()["hex"]
    assert added[1]["hex"] == before

    said = []
    restarted = local_client(make_service(serving_model, serving_data, tmp_path, log=said.append))
    assert restarted.get("/stats").json()["added_images"] == 2
    assert len(said) == 2 and all("up to date" in line for line in said), said  # nothing re-encoded
    assert found(restarted)[49] == match
    # lost codes are re-encoded from the stored images, to the same codes
    for name in os.listdir(tmp_path / "store" / "codes"):
        os.unlink(tmp_path / "store" / "codes" / name)
    again = make_service(serving_model, serving_data, tmp_path)
    np.testing.assert_array_equal(again.searcher.index.packed_codes(), service.searcher.index.packed_codes())
    response = client.post("/items", files={"files": ("x.jpg", blobs[0], "image/jpeg")}, data={"labels": "nope"})
    assert response.status_code == 400 and "unknown class 'nope'" in response.json()["detail"]


def test_matched_images_are_served_from_the_data_root_only(client, serving_data, tmp_path, reference):
    rel = reference["paths"][0]
    assert client.get("/images/" + rel).content == open(os.path.join(serving_data, rel), "rb").read()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(open(os.path.join(serving_data, rel), "rb").read())
    link = os.path.join(serving_data, "images", "escape.jpg")
    os.symlink(secret, link)
    try:
        refused = {  # (a literal "/../" is removed by the HTTP client; the e2e test sends it raw)
            "/images/images/%2e%2e/%2e%2e/secret.jpg": 400,
            "/images/..%2F..%2Fetc%2Fpasswd": 400, "/images/%2Fetc%2Fpasswd": 400,
            "/images/" + str(secret): 400, "/images/%2F" + str(secret).lstrip("/"): 400,
            "/images/images\\..\\..\\secret.jpg": 400, "/images/images/%2e/escape.jpg": 400,
            "/images/images/escape.jpg": 404,  # a symlink out of the root
            "/images/database.txt": 404, "/images/images": 404, "/images/images/missing.jpg": 404,
            "/added/%2e%2e/items.txt": 400, "/added/%2e%2e/cache/database_code_64.json": 400,
        }
        for url, status in refused.items():
            response = client.get(url)
            assert response.status_code == status, (url, response.status_code)
            assert response.content != secret.read_bytes()
    finally:
        os.unlink(link)


def test_concurrent_requests_answer_like_sequential_ones(client, reference, serving_data, serving_model, tmp_path):
    queries = [os.path.join(serving_data, p) for p in reference["paths"][:16]]

    def ask(path):
        return client.post("/search", files=upload(path), data={"k": "5"}).json()["matches"]

    sequential = [ask(p) for p in queries]
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(ask, queries * 2))
    assert concurrent == sequential * 2
    # concurrent adds: every one lands once, in the index, the list and the codes
    store = make_service(serving_model, serving_data, tmp_path)
    writer = local_client(store)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: writer.post("/items", files={"files": ("q.jpg", open(p, "rb").read())}).json(),
                                queries[:8]))
    indices = sorted(r["added"][0]["index"] for r in results)
    assert indices == list(range(48, 56))
    lines = open(tmp_path / "store" / "items.txt").read().splitlines()
    assert len(lines) == 8 and len({line.split()[0] for line in lines}) == 8
    restarted = make_service(serving_model, serving_data, tmp_path)
    np.testing.assert_array_equal(restarted.searcher.index.packed_codes(), store.searcher.index.packed_codes())


def test_the_model_is_loaded_once(client, serving_data, reference, monkeypatch):
    import utils.inference
    import utils.inference.encoder_pool as encoders

    def no_new_predictor(*args, **kwargs):
        raise AssertionError("a request created a predictor")

    monkeypatch.setattr(encoders, "InferenceEncoder", no_new_predictor)
    monkeypatch.setattr(utils.inference.InferenceEncoder, "__init__", no_new_predictor)
    path = os.path.join(serving_data, reference["paths"][3])
    assert client.post("/search", files=upload(path)).status_code == 200
    assert client.post("/encode", files=upload(path)).status_code == 200


def test_page_uses_no_external_resources(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="file"' in page.text and 'id="k"' in page.text and 'id="radius"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200
        for text in (page.text, response.text):
            assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert client.get("/static/../app.py").status_code == 404
