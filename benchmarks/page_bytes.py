"""What a first visit downloads for the page's own answers, as the app serves it: each file's bytes raw and gzip.

    python benchmarks/page_bytes.py [--models exported_models]     # -> assets/benchmarks/page_bytes.json

Starts the app (``app.build_demo`` and ``launch``, on a free loopback port), reads ``/page/config.json`` and fetches
every file it names (the runtime's ES module and its two siblings, the page's modules, the three slot models) twice
with ``Accept-Encoding: gzip`` and once without: the bytes on the wire, and the server's time for the first gzip
request (the file compressed there, once) against the second (kept in memory). A module the page lists but the
server does not have yet is recorded as missing. A browser revalidating later downloads none of it (``no-cache`` with
ETags: a 304 per file).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from records import write_record  # noqa: E402

from tests.app_support import serve  # noqa: E402
from webapp.page_files import ORT_FILES  # noqa: E402


def get(url: str, path: str, zipped: bool) -> tuple[int, bytes, dict[str, str], float]:
    """Status, body as sent, headers and seconds of one GET."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    started = time.perf_counter()
    try:
        conn.request("GET", "/" + path, headers={"Accept-Encoding": "gzip"} if zipped else {})
        response = conn.getresponse()
        body = response.read()
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}, time.perf_counter() - started
    finally:
        conn.close()


def measure(url: str, path: str) -> dict:
    """One file: raw and gzip bytes as served, the first and the second gzip request's seconds."""
    status, raw, _, _ = get(url, path, zipped=False)
    if status != 200:
        return {"path": path, "status": status}
    _, body, headers, first = get(url, path, zipped=True)
    _, again, _, second = get(url, path, zipped=True)
    if headers.get("content-encoding") != "gzip" or gzip.decompress(body) != raw or again != body:
        raise SystemExit(f"{path}: the gzip answer is not the file")
    return {"path": path, "status": status, "bytes": len(raw), "gzip_bytes": len(body), "first_gzip_s": first,
            "cached_gzip_s": second}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "exported_models")
    parser.add_argument("--assets", type=Path, default=REPO / "assets")
    args = parser.parse_args(argv)
    import app

    demo = app.build_demo(args.models, args.assets)
    url = serve(demo)
    try:
        status, body, _, _ = get(url, "page/config.json", zipped=False)
        config = json.loads(body)
        folder = config["runtime"]["wasm"]
        paths = ["page/config.json", config["runtime"]["module"],
                 *(folder + n for n in ORT_FILES if folder + n != config["runtime"]["module"]),
                 *config["modules"].values(), *(s["file"] for s in config["slots"] if s["file"])]  # fmt: skip
        files = [measure(url, p) for p in paths]
    finally:
        demo.close()
    found = [f for f in files if f["status"] == 200]
    rows = [[f["path"], f["bytes"], f["gzip_bytes"], round(1000 * f["first_gzip_s"], 1),
             round(1000 * f["cached_gzip_s"], 1)] for f in found]  # fmt: skip
    rows.append(["total", sum(f["bytes"] for f in found), sum(f["gzip_bytes"] for f in found), None, None])
    missing = [f["path"] for f in files if f["status"] != 200]
    state = "on" if config["enabled"] else f"off ({config['reason']})"
    notes = [f"When measured, the page's inference was {state}. Bytes as sent over HTTP: raw, and gzip (level 6) as "
             "the app sends it when the request accepts it. ms: the first gzip request (the server compresses the "
             "file then, once) and the next (kept in memory), on loopback.",
             "A later visit downloads none of it while the files are unchanged: Cache-Control no-cache with an "
             "ETag per file, a 304 each."]  # fmt: skip
    if missing:
        notes.append("Not on the server when measured (404, not counted): " + ", ".join(missing) + ".")
    path = write_record(
        "page_bytes", "What a first visit downloads for the page's own answers",
        {"columns": ["file", "bytes", "gzip bytes", "first gzip ms", "cached gzip ms"], "rows": rows},
        {"models": str(args.models), "runtime": config["runtime"], "enabled": config["enabled"]}, notes,
        data={"files": files})  # fmt: skip
    for row in rows:
        print(*row, sep="\t")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
