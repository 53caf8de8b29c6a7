"""End to end: `python -m deploy.serving` on a free localhost port, the page in headless Chromium.

Needs /usr/bin/chromium (scripts/install_test_tools.sh installs it) and playwright (used as a
driver only: it launches the system Chromium, it never downloads a browser). Where
HASHNET_REQUIRE_BROWSER=1 (CI: .ci/run sets it) a missing browser is a failure; elsewhere the browser
tests are skipped with the reason, and the rest of the suite runs.
"""
import functools
import http.client
import http.server
import os
import threading
import urllib.parse

import httpx
import pytest

from deploy.serving.launch import running_service
from tests.deploy.conftest import db_list
from utils.data.lists import parse_list

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # --headless: playwright's headless=True adds it


REQUIRE_BROWSER = "HASHNET_REQUIRE_BROWSER"  # "1": a missing browser fails the test (.ci/run sets it)


def require_browser():
    missing = None
    if not os.path.isfile(CHROMIUM):
        missing = f"{CHROMIUM} not found: run scripts/install_test_tools.sh (Debian's chromium) before the tests"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed: pip install -r requirements-serving.txt"
    if missing is None:
        return
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{missing} ({REQUIRE_BROWSER}=1)")
    pytest.skip(f"{missing}; with {REQUIRE_BROWSER}=1 (CI) this fails")


@pytest.fixture(scope="module")
def server(serving_model, serving_data, tmp_path_factory):
    """The service in its own process; yields its base URL."""
    work = tmp_path_factory.mktemp("e2e")
    flags = ["--model-dir", serving_model, "--data-path", serving_data, "--list-dir", serving_data,
             "--cache-dir", str(work / "cache"), "--store-dir", str(work / "store"), "--num-workers", "0",
             "--threads", "1", "--log-level", "warning"]
    try:
        with running_service(flags, cwd=str(work)) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_raw_dot_dot_paths_are_refused_by_the_running_server(server):
    host = urllib.parse.urlsplit(server)
    for path in ("/images/../database.txt", "/images/images/../../../etc/passwd", "/added/../items.txt"):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        conn.request("GET", path)  # sent as written: http.client does not remove dot segments
        response = conn.getresponse()
        assert response.status == 400, (path, response.status)
        assert b"without '..'" in response.read()
        conn.close()


@pytest.mark.browser
def test_search_in_the_browser_shows_the_image_first_at_distance_0(server, serving_data, tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    paths, _ = parse_list(db_list(serving_data))
    image = os.path.join(serving_data, paths[0])
    requested = []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       headless=True, args=FLAGS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.goto(server)
            page.wait_for_function("() => document.querySelector('#stats').textContent.includes('48 images')")
            page.set_input_files("#file", image)
            first = page.locator("#matches .match").first
            first.wait_for(timeout=20_000)
            assert first.get_attribute("data-distance") == "0"
            assert first.get_attribute("data-path") == paths[0]
            assert "d = 0" in first.inner_text()
            assert page.locator("#matches .match").count() == 10
            page.wait_for_function("() => [...document.querySelectorAll('#matches img'), document.querySelector('#query-image')]"
                                   ".every(img => img.complete && img.naturalWidth > 0)")

            page.fill("#k", "3")
            page.dispatch_event("#k", "change")
            page.wait_for_function("() => document.querySelectorAll('#matches .match').length === 3")
            page.fill("#k", "48")
            page.fill("#radius", "0")
            page.dispatch_event("#radius", "change")
            page.wait_for_function("() => document.querySelector('#status').textContent.includes('within radius 0')")
            distances = page.locator("#matches .match").evaluate_all("ms => ms.map(m => m.dataset.distance)")
            assert distances and set(distances) == {"0"}

            # dropping a file works like picking one, and shows what the API answers
            with open(os.path.join(serving_data, paths[5]), "rb") as f:
                expected = httpx.post(server + "search", files={"file": ("q.jpg", f.read())}).json()["matches"][0]
            page.fill("#radius", "")
            page.evaluate("""async (url) => {
                const blob = await (await fetch(url)).blob();
                const dt = new DataTransfer();
                dt.items.add(new File([blob], 'dropped.jpg', {type: 'image/jpeg'}));
                document.querySelector('#drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
            }""", "/images/" + paths[5])
            page.wait_for_function("(path) => document.querySelector('#matches .match')?.dataset.path === path",
                                   arg=expected["path"])
            assert page.locator("#matches .match").first.get_attribute("data-distance") == "0" == str(expected["distance"])
        finally:
            context.close()
    outside = [u for u in requested if not u.startswith(server) and not u.startswith(("blob:", "data:"))]
    assert requested and not outside, outside


@pytest.mark.browser
def test_the_page_shows_only_the_controls_before_a_query_and_clears_results_after_a_failed_one(server, serving_data,
                                                                                              tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    paths, _ = parse_list(db_list(serving_data))
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not an image")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       headless=True, args=FLAGS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(server)
            page.wait_for_function("() => document.querySelector('#stats').textContent.includes('48 images')")
            # before the first query: the drop zone and the fields, no (broken) query tile, no results
            assert page.locator("#drop").is_visible()
            for hidden in ("#results", "#query", "#query-image", "#matches"):
                assert not page.locator(hidden).is_visible(), hidden
            assert page.locator("#results").evaluate("e => getComputedStyle(e).display") == "none"
            assert page.locator("#query-image").get_attribute("src") is None
            # a good query, then a failed one: the error alone, not the old results under it
            page.set_input_files("#file", os.path.join(serving_data, paths[0]))
            page.locator("#matches .match").first.wait_for(timeout=20_000)
            assert page.locator("#results").is_visible() and page.locator("#query-image").is_visible()
            page.set_input_files("#file", str(not_an_image))
            page.wait_for_function("() => document.querySelector('#status').className === 'error'")
            assert page.locator("#status").inner_text().startswith("error 4")
            assert not page.locator("#results").is_visible()
            assert page.locator("#matches .match").count() == 0 and page.locator("#query-code").inner_text() == ""
            assert page.locator("#query-image").get_attribute("src") is None
            # and the next good query shows its results again
            page.set_input_files("#file", os.path.join(serving_data, paths[1]))
            page.wait_for_function("(path) => document.querySelector('#matches .match')?.dataset.path === path",
                                   arg=paths[1])
            assert page.locator("#results").is_visible()
        finally:
            context.close()


def test_a_foreign_host_is_answered_400_by_the_running_server(server):
    host = urllib.parse.urlsplit(server)
    for name, status in (("evil.example", 400), (f"evil.example:{host.port}", 400), (f"localhost:{host.port}", 200),
                         (f"127.0.0.1:{host.port}", 200)):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        conn.request("GET", "/stats", headers={"Host": name})  # what a DNS-rebound page's requests carry
        response = conn.getresponse()
        body = response.read()
        assert response.status == status, (name, response.status, body)
        conn.close()


@pytest.mark.browser
def test_a_page_of_another_origin_cannot_add_images(server, serving_data, tmp_path):
    """issue 24, defect 2: a page on another port of this machine (another origin, the same site)
    POSTs a multipart form with fetch(..., {mode: 'no-cors'}), which needs no CORS preflight: the
    service answers 403 and its database does not change."""
    require_browser()
    from playwright.sync_api import sync_playwright

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>another site</title><p>nothing to see</p>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    paths, _ = parse_list(db_list(serving_data))
    with open(os.path.join(serving_data, paths[0]), "rb") as f:
        image = list(f.read())
    before = httpx.get(server + "stats").json()["database_size"]
    answers = []
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                           headless=True, args=FLAGS)
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.on("response", lambda r: answers.append((r.request.method, r.url, r.status))
                        if r.url.startswith(server) else None)
                page.goto(f"http://127.0.0.1:{other.server_address[1]}/index.html")
                page.evaluate("""async ([url, bytes]) => {
                    const form = new FormData();
                    form.append('files', new File([new Uint8Array(bytes)], 'x.jpg', {type: 'image/jpeg'}));
                    form.append('labels', '0');
                    await fetch(url + 'items', {method: 'POST', mode: 'no-cors', body: form});
                }""", [server, image])
                page.wait_for_timeout(500)
            finally:
                context.close()
    finally:
        other.shutdown()
    assert answers == [("POST", server + "items", 403)], answers  # it reached the service, which refused it
    assert httpx.get(server + "stats").json()["database_size"] == before
