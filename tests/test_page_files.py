"""The page's own files (webapp/page_files.py): over HTTP from a served app, each whitelisted file with its type and
its bytes (gzip when asked), ETag revalidation, 404 for everything else; the configuration of the shipped models;
and every reason the page's inference is off: the server's flag, no page models, no runtime, a copy of another file,
a copy that does not match its manifest."""

from __future__ import annotations

import gzip
import http.client
import json
import shutil
import urllib.parse
from pathlib import Path

import pytest

from tests.app_support import REAL_ASSETS, REAL_MODELS, serve
from webapp import page_files as pf
from webapp.served import ServedModels

STUB = b"export {};\n"  # a module the other branches write (answers.js, words.js, page.js) where not there yet
TYPES = {"ort.wasm.min.mjs": "text/javascript", "ort-wasm-simd-threaded.mjs": "text/javascript",
         "ort-wasm-simd-threaded.wasm": "application/wasm", ".js": "text/javascript",
         ".onnx": "application/octet-stream"}  # fmt: skip


def fetch(url: str, path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent exactly as given (no client normalising ``..``); status, headers, raw body."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, parts.path.rstrip("/") + path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def static(tmp_path_factory) -> Path:
    """The page's modules as in webapp/static/, a stub for each one not written yet."""
    folder = tmp_path_factory.mktemp("static")
    for name in pf.PAGE_MODULES:
        real = pf.STATIC_DIR / name
        (folder / name).write_bytes(real.read_bytes() if real.is_file() else STUB)
    return folder


@pytest.fixture(scope="module")
def lab() -> ServedModels:
    return ServedModels(REAL_MODELS, REAL_ASSETS)


@pytest.fixture(scope="module")
def served(static):
    """The app on the shipped models, served; the page's modules from ``static``."""
    import app

    saved, pf.STATIC_DIR = pf.STATIC_DIR, static
    try:
        demo = app.build_demo(REAL_MODELS, REAL_ASSETS)
    finally:
        pf.STATIC_DIR = saved
    url = serve(demo)
    yield url, demo
    demo.close()


def test_config_lists_the_three_slots_for_the_shipped_models(served, lab) -> None:
    url, demo = served
    status, headers, body = fetch(url, "/page/config.json")
    assert status == 200 and headers["content-type"].startswith("application/json")
    config = json.loads(body)
    assert config == demo.emnist_page.config == demo.emnist_lab.page.config
    assert config["enabled"] is True and config["reason"] is None, config["reason"]
    assert config["level"] == lab.level and config["runtime"]["module"] == "page/ort/ort.wasm.min.mjs"
    assert [s["slot"] for s in config["slots"]] == ["byclass", "bymerge", "balanced"]
    for slot, name in zip(config["slots"], lab.slot_defaults(), strict=True):
        entry = lab.entry(name)
        assert slot["name"] == name and slot["labels"] == entry.labels and slot["displays"] == entry.displays
        assert slot["answers"]["sets"] and slot["answers"] == entry.answers.to_dict() and slot["problem"] is None
        assert slot["file"] == f"page/models/{name}.int8.onnx"
    urls = [config["runtime"]["module"], *config["modules"].values(), *(s["file"] for s in config["slots"])]
    assert not any(u.startswith("/") or "//" in u for u in urls)  # relative: a proxy's root path works
    for u in urls:
        assert fetch(url, "/" + u, "HEAD")[0] == 200, u


def whitelist(static: Path, lab: ServedModels) -> dict[str, Path]:
    """URL path -> the file on disk it must serve."""
    files = {f"/page/ort/{n}": pf.RUNTIME_DIR / n for n in pf.ORT_FILES}
    files |= {f"/page/js/{n}": static / n for n in pf.PAGE_MODULES}
    return files | {f"/page/models/{n}.int8.onnx": REAL_MODELS / "page" / f"{n}.int8.onnx"
                    for n in lab.slot_defaults()}  # fmt: skip


def test_each_whitelisted_file_is_served_as_on_disk_gzip_when_asked(served, static, lab) -> None:
    url, _ = served
    for path, disk in whitelist(static, lab).items():
        want = TYPES.get(disk.name) or TYPES[disk.suffix]
        status, headers, body = fetch(url, path)
        assert status == 200 and headers["content-type"].startswith(want), (path, status, headers)
        assert body == disk.read_bytes() and "content-encoding" not in headers, path
        status, zipped, body = fetch(url, path, **{"Accept-Encoding": "br, gzip;q=0.8"})
        assert status == 200 and zipped["content-encoding"] == "gzip" and zipped["content-type"] == headers[
            "content-type"], path
        assert gzip.decompress(body) == disk.read_bytes() and int(zipped["content-length"]) == len(body), path
        if disk.suffix not in (".js", ".json"):  # Gradio's own middleware gzips those when the header says "gzip"
            assert fetch(url, path, **{"Accept-Encoding": "gzip;q=0"})[1].get("content-encoding") is None, path
        assert "accept-encoding" in zipped["vary"].lower() and zipped["etag"] != headers["etag"]
        for held in (headers["etag"], zipped["etag"]):
            status, again, body = fetch(url, path, **{"If-None-Match": held, "Accept-Encoding": "gzip"})
            assert status == 304 and body == b"" and again["etag"] == zipped["etag"], path
        assert fetch(url, path, **{"If-None-Match": '"0000"'})[0] == 200
        status, head, body = fetch(url, path, "HEAD")
        assert status == 200 and body == b"" and int(head["content-length"]) == disk.stat().st_size, path


def test_accepted_encodings() -> None:
    assert pf.accepts_gzip("gzip, deflate, br, zstd") and pf.accepts_gzip("br;q=1.0, GZIP;q=0.5")
    assert pf.accepts_gzip("*") and not pf.accepts_gzip("gzip;q=0") and not pf.accepts_gzip("br, identity")
    assert not pf.accepts_gzip("") and not pf.accepts_gzip("x-gzip-like") and not pf.accepts_gzip("gzip;q=zero")


@pytest.mark.parametrize("path", [
    "/page/ort/ort.wasm.min.js", "/page/ort/ort-wasm-simd-threaded.jsep.wasm", "/page/ort/ort.webgpu.min.mjs",
    "/page/ort/package.json", "/page/ort/..%2Fpackage.json", "/page/ort/%2e%2e%2f%2e%2e%2fpackage.json",
    "/page/ort/../package.json", "/page/js/canvas.js", "/page/js/..%2Fapi.py", "/page/js/../../app.py",
    "/page/models/manifest.json", "/page/models/page_models.json", "/page/models/residual_cnn-byclass.onnx",
    "/page/models/..%2Fmanifest.json", "/page/models/../manifest.json", "/page/config.json/x", "/page/js/",
    "/page/css/page.css", "/page/exported_models/manifest.json", "/page/app.py"])  # fmt: skip
def test_nothing_else_is_served(served, path) -> None:
    status, _, body = fetch(served[0], path)
    assert status == 404, (path, status, body[:200])


def page_copy(tmp_path: Path, page: bool = True) -> Path:
    """The shipped models' folder, its files linked, the page copies' folder copied (or left out)."""
    folder = tmp_path / "models"
    folder.mkdir()
    for item in REAL_MODELS.iterdir():
        if item.name != "page":
            (folder / item.name).symlink_to(item)
    if page:
        shutil.copytree(REAL_MODELS / "page", folder / "page")
    return folder


def test_the_servers_flag_turns_the_page_off(static, tmp_path, monkeypatch) -> None:
    import app

    built = []
    monkeypatch.setattr(app, "launch", lambda demo, *args, **kwargs: built.append(demo))
    monkeypatch.setattr(pf, "STATIC_DIR", static)
    assert app.main(["--models", str(REAL_MODELS), "--assets", str(REAL_ASSETS), "--no-keep",
                     "--no-browser-inference"]) == 0  # fmt: skip
    page = built[0].emnist_lab.page
    assert page.enabled is False and page.reason == "turned off by the server (--no-browser-inference)"
    assert page.config["enabled"] is False and page.config["reason"] == page.reason
    assert len(page.config["slots"]) == 3  # the rest of the configuration as it would be


def test_no_page_models_no_runtime_no_modules(static, tmp_path) -> None:
    lab = ServedModels(page_copy(tmp_path, page=False), REAL_ASSETS)
    page = pf.page_files(lab, static_dir=static)
    assert not page.enabled and "no page models" in page.reason and "training.page_models" in page.reason
    assert not any(k.startswith("models/") for k in page.files) and str(tmp_path) not in page.reason
    empty = tmp_path / "empty"
    empty.mkdir()
    page = pf.page_files(ServedModels(REAL_MODELS, REAL_ASSETS), runtime_dir=empty, static_dir=static)
    assert not page.enabled and page.reason == pf.NO_RUNTIME and not any(k.startswith("ort/") for k in page.files)
    assert len([k for k in page.files if k.startswith("models/")]) == 3
    page = pf.page_files(ServedModels(REAL_MODELS, REAL_ASSETS), static_dir=empty)
    assert not page.enabled and "page.js is missing" in page.reason


@pytest.mark.parametrize("change", ["source", "bytes"])
def test_a_page_model_of_another_file_is_refused(static, tmp_path, change) -> None:
    models = page_copy(tmp_path)
    manifest = json.loads((models / "page" / "manifest.json").read_text())
    entry = manifest["models"][1]
    if change == "source":
        entry["source_sha256"] = "0" * 64
        (models / "page" / "manifest.json").write_text(json.dumps(manifest))
    else:
        with open(models / "page" / entry["file"], "ab") as f:
            f.write(b"\0")
    page = pf.page_files(ServedModels(models, REAL_ASSETS), static_dir=static)
    refused = [s for s in page.config["slots"] if s["problem"]]
    assert not page.enabled and [s["name"] for s in refused] == [entry["name"]] and refused[0]["file"] is None
    assert ("made from another file" if change == "source" else "does not match its sha256") in page.reason
    assert f"models/{entry['file']}" not in page.files and len([k for k in page.files if "models/" in k]) == 2
