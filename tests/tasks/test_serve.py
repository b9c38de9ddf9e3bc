"""The search server: the JSON API and the page through Flask's test client, bad input, image serving,
start-up checks, and the page in a real headless Chromium against a real local server."""
import io
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashnet.data.images import transforms
from hashnet.data.lists import read_list
from hashnet.retrieval.codes import CodeFile, CodeFileError, binarize, load_codes, pack_codes, save_codes, unpack_codes
from hashnet.tasks.encode import encode
from hashnet.tasks.serve import create_app, expose_command, load_app, start_server
from hashnet.inference.encoding import encode_images
from hashnet.tasks.setup import build_model

from conftest import compose_config
from script_runner import Case, run_scripts

ROOT = Path(__file__).resolve().parents[2]
SMALL = 120  # indexed images of the fast tests: the first 120 of the digits database
CHROME, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def png_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def first_of_its_code(database: CodeFile, position: int) -> int:
    """The lowest position holding the same code as position: ranked first at distance 0 when searched for."""
    return int(np.flatnonzero((database.codes == database.codes[position]).all(axis=1))[0])


@pytest.fixture(scope="module")
def small(digits_root, tmp_path_factory):
    """An untrained 16-bit digits model and the codes of 120 database images, encoded as the server encodes uploads."""
    cfg = compose_config("train", ["hash_bit=16", "method.class_num=10", f"paths.data_dir={digits_root.parent}"],
                         tmp_path_factory.mktemp("m"))
    torch.manual_seed(0)
    model = build_model(cfg)
    images = read_list(digits_root / "database.txt", 10, root=digits_root)
    paths, labels = images.paths[:SMALL], images.labels[:SMALL]
    transform = transforms(36, 32, train=False)
    batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    codes = pack_codes(binarize(encode_images(model, [batch], torch.device("cpu"))))
    meta = {"hash_bit": 16, "net": "resnet18", "dataset": "digits", "split": "database", "checkpoint": None,
            "resize_size": 36, "crop_size": 32}
    return model, CodeFile(codes, labels, paths, meta)


@pytest.fixture(scope="module")
def client(small):
    model, database = small
    return create_app(model, database, checkpoint="tiny.ckpt", k=20, max_upload_mb=0.01).test_client()


def upload(client, data: bytes, k: str = "5", url: str = "/api/search"):
    return client.post(url, data={"image": (io.BytesIO(data), "query.png"), "k": k}, content_type="multipart/form-data")


def test_search_by_position_returns_the_ranking(client, small):
    _, database = small
    response = client.get("/api/search?item=7&k=6")
    assert response.status_code == 200
    found = response.get_json()
    assert found["query"] == {"position": 7, "path": database.paths[7], "labels": [int(np.argmax(database.labels[7]))]}
    results = found["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5, 6] and found["k"] == 6
    bits = unpack_codes(database.codes)
    for r in results:  # each distance: the bits where the two codes differ, counted here
        assert r["distance"] == int((bits[r["position"]] != bits[7]).sum())
        assert r["path"] == database.paths[r["position"]] and r["labels"] == np.flatnonzero(database.labels[r["position"]]).tolist()
        assert r["relevant"] == bool(database.labels[r["position"]] @ database.labels[7] > 0)
    all_distances = np.sort((bits != bits[7]).sum(axis=1))
    assert [r["distance"] for r in results] == all_distances[:6].tolist()  # the 6 smallest, in order
    assert results[0]["position"] == first_of_its_code(database, 7) and results[0]["distance"] == 0


def test_upload_of_an_indexed_image_finds_it_first(client, small):
    _, database = small
    position = first_of_its_code(database, 60)
    found = upload(client, png_bytes(database.paths[position])).get_json()
    assert found["query"] == {"filename": "query.png", "labels": None}
    assert (found["results"][0]["position"], found["results"][0]["distance"]) == (position, 0)
    assert len(found["results"]) == 5 and all(r["relevant"] is None for r in found["results"])  # no labels: no frames
    assert found["encode_ms"] > 0 and found["search_ms"] > 0


def test_info_holds_the_code_file_metadata(client):
    info = client.get("/api/info").get_json()
    assert {key: info[key] for key in ("hash_bit", "net", "dataset", "split", "size", "checkpoint")} == {
        "hash_bit": 16, "net": "resnet18", "dataset": "digits", "split": "database", "size": SMALL, "checkpoint": "tiny.ckpt"}
    assert info["max_k"] == SMALL and info["backend"] in ("exact", "faiss")


def truncated_png(path: str) -> bytes:
    data = png_bytes(path)
    return data[: len(data) // 2]


BAD_REQUESTS = {  # name -> (request, status, words of the message)
    "not an image": (lambda c, p: upload(c, b"just some text, not pixels"), 400, "not a readable image"),
    "truncated image": (lambda c, p: upload(c, truncated_png(p)), 400, "not a readable image"),
    "empty file": (lambda c, p: upload(c, b""), 400, "empty"),
    "no file field": (lambda c, p: c.post("/api/search", data={"k": "5"}), 400, "no file in the form field 'image'"),
    "over the size limit": (lambda c, p: upload(c, b"\x89PNG" + bytes(20_000)), 413, "over the 0.01 MB limit"),
    "k = 0": (lambda c, p: c.get("/api/search?item=3&k=0"), 400, "k='0'"),
    "k not a number": (lambda c, p: c.get("/api/search?item=3&k=ten"), 400, "in 1..120"),
    "k over the index": (lambda c, p: c.get("/api/search?item=3&k=121"), 400, "in 1..120"),
    "k of an upload": (lambda c, p: upload(c, png_bytes(p), k="-2"), 400, "k='-2'"),
    "unknown position": (lambda c, p: c.get("/api/search?item=120&k=3"), 404, "positions 0..119"),
    "negative position": (lambda c, p: c.get("/api/search?item=-1"), 400, "item='-1'"),
    "no position": (lambda c, p: c.get("/api/search"), 400, "item=''"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_request_gets_a_message_and_the_server_stays_up(client, small, name):
    send, status, words = BAD_REQUESTS[name]
    response = send(client, small[1].paths[0])
    assert response.status_code == status
    assert response.is_json and words in response.get_json()["error"] and response.get_json()["status"] == status
    assert client.get("/api/search?item=4&k=2").status_code == 200  # still answering
    assert upload(client, png_bytes(small[1].paths[4])).status_code == 200


def test_page_shows_the_grid_and_errors_in_html(client, small):
    _, database = small
    page = client.get("/?item=7&k=6").get_data(as_text=True)
    assert page.count('<figure class="result') == 6 and 'data-rank="1" data-distance="0"' in page
    assert "Top 6 in" in page and f"{database.paths[7]}" in page and "Green frame" in page
    assert page.count('class="pick"') == 24  # the random sample to browse
    missing = client.get("/?item=500")
    assert missing.status_code == 404 and "positions 0..119" in missing.get_data(as_text=True)
    assert "<form" in missing.get_data(as_text=True)  # the page, with the message, to try again
    damaged = upload(client, truncated_png(database.paths[0]), url="/")
    assert damaged.status_code == 400 and "not a readable image" in damaged.get_data(as_text=True)
    uploaded = upload(client, png_bytes(database.paths[0]), k="3", url="/").get_data(as_text=True)
    assert uploaded.count('<figure class="result') == 3 and "data:image/png;base64," in uploaded
    assert "Green frame" not in uploaded  # an upload has no labels


def test_only_indexed_images_are_served_by_position(client, small):
    _, database = small
    response = client.get("/image/3")
    assert response.status_code == 200 and response.data == png_bytes(database.paths[3])
    assert response.mimetype == "image/png"
    secret = str(ROOT / "pyproject.toml")
    for url in ("/image/120", "/image/-1", "/image/3.png", "/image/../../pyproject.toml", "/image/%2e%2e%2fpyproject.toml",
                f"/image/{secret}", "/static/serve.py", "/templates/search.html", "/..%2fpyproject.toml"):
        refused = client.get(url)
        assert refused.status_code in (404, 405) and b"[build-system]" not in refused.data, url
    assert client.get("/api/info").status_code == 200


def test_expose_command_works_as_printed(tmp_path):
    odd = tmp_path / "my runs, v2" / "last.ckpt"  # typed as Hydra wants it: quoted, then shell-quoted
    command = expose_command("scripts/serve.py", [f"ckpt_path='{odd}'", "index=codes.npz", "host=127.0.0.1", "port=8001"])
    argv = shlex.split(command)
    assert argv[:2] == ["python", "scripts/serve.py"] and argv[-1] == "host=0.0.0.0"
    cfg = compose_config("serve", argv[2:], tmp_path)  # as Hydra parses the line when it is typed
    assert (cfg.ckpt_path, cfg.index, cfg.host, cfg.port) == (str(odd), "codes.npz", "0.0.0.0", 8001)


def test_serve_config_defaults(tmp_path):
    cfg = compose_config("serve", ["ckpt_path=a.ckpt", "index=b.npz"], tmp_path)
    assert (cfg.host, cfg.port, cfg.k, cfg.device, cfg.backend) == ("127.0.0.1", 8000, 20, "auto", "auto")


def test_a_taken_port_is_refused_with_the_fix(client):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port} .*port=0 picks a free one"):
            start_server(client.application, "127.0.0.1", port)


@pytest.fixture(scope="module")
def trained(tiny_csv_run, digits_root) -> tuple[str, Path]:
    """A tiny digits checkpoint and its code file of the whole database (1,497 images)."""
    run_dir, results = tiny_csv_run
    index = encode(compose_config("encode", [f"ckpt_path={results['checkpoint']}", f"paths.data_dir={digits_root.parent}",
                                             "dataset.eval_batch_size=750", "device=cpu"], run_dir / "encode"))
    return results["checkpoint"], index


def serve_script(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "scripts/serve.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_code_file_of_another_checkpoint_is_refused_at_start_up(trained, tmp_path):
    checkpoint, index = trained
    other = load_codes(index)
    wrong = save_codes(tmp_path / "alexnet.npz", unpack_codes(other.codes), other.labels, other.paths,
                       {**other.meta, "net": "alexnet"})
    with pytest.raises(CodeFileError, match="net='alexnet', expected net='resnet18'"):
        load_app(checkpoint, str(wrong))
    (refused,) = run_scripts([Case("serve", [f"ckpt_path={checkpoint}", f"index={wrong}", "port=0",
                                             f"hydra.run.dir={tmp_path / 'hydra'}"])])
    assert refused.code == 1  # as `python scripts/serve.py ...` typed: a message naming the mismatch, no traceback
    assert refused.stderr.startswith("serve: ") and "expected net='resnet18'" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_script_serves_and_prints_how_to_expose_it(trained, tmp_path):
    checkpoint, index = trained
    process = serve_script([f"ckpt_path={checkpoint}", f"index={index}", "port=0", "k=5", f"hydra.run.dir={tmp_path / 'hydra'}"])
    try:
        url = process.stdout.readline().split()[2]
        assert url.startswith("http://127.0.0.1:")
        info = urllib.request.urlopen(url + "api/info", timeout=30).read()
        assert b'"size":1497' in info
        assert "Only this machine can connect" in process.stdout.readline()
        argv = shlex.split(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=30)
    cfg = compose_config("serve", argv[2:], tmp_path)
    assert (cfg.ckpt_path, cfg.index, cfg.host, cfg.k) == (checkpoint, str(index), "0.0.0.0", 5)


def browser(profile: Path):
    """Headless Chromium driven through Debian's chromedriver (no Selenium Manager download)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROME
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1280,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which(CHROME) and shutil.which(CHROMEDRIVER)),
                    reason="needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
def test_page_in_a_real_browser_finds_an_uploaded_image_first(trained, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
    checkpoint, index = trained
    database = load_codes(index)
    position = first_of_its_code(database, 700)
    server = start_server(load_app(checkpoint, str(index), device="cpu"), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = browser(tmp_path / "profile")
    try:
        driver.get(f"http://127.0.0.1:{server.port}/")
        assert "1497 images of digits/database" in driver.find_element(By.CLASS_NAME, "info").text
        driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(database.paths[position])
        WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.ID, "results")))
        results = driver.find_elements(By.CSS_SELECTOR, "#results figure.result")
        assert len(results) == 20  # the default k
        first = results[0]
        assert (first.get_attribute("data-path"), first.get_attribute("data-distance")) == (database.paths[position], "0")
        assert "#1" in first.text and "d=0" in first.text
        images_loaded = driver.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth == 32)")
        assert images_loaded
        shot = driver.get_screenshot_as_png()
    finally:
        driver.quit()
        server.shutdown()
    (tmp_path / "search_page.png").write_bytes(shot)
    if os.environ.get("HASHNET_SCREENSHOT"):
        Path(os.environ["HASHNET_SCREENSHOT"]).write_bytes(shot)
    with Image.open(io.BytesIO(shot)) as image:
        assert image.size == (1280, 1000) or image.size[0] >= 1000
