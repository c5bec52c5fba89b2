"""The heat maps ("where it looked") from the server or from the page: the same occlusion batches timed on both sides.

    python benchmarks/page_saliency.py [--drawings 60]     # -> assets/benchmarks/page_saliency.json

Drawings: drawing-benchmark renderings of real EMNIST test images on the 400x400 canvas (tests/parity_support.py's
``drawbench_canvases``), read by the server's preprocessing (``server_input``); the refused ones are left out.
Per drawing:

    server   ``stroke_segments`` and the three slot models' occlusion batches (``segment_map``, one batch of n+1
             inputs per model) on three threads, as webapp.analysis.saliency_maps runs them, through the served
             float32 models (one ONNX Runtime thread per session): wall time and the process's CPU time; and
             ``saliency_maps`` itself (with its overlays) as the app calls it
    page     the same batches (built here from the same x28 and segments, sent to the page as Float32Arrays) through
             the page's int8 models (exported_models/page/) with onnxruntime-web in headless Chromium, one
             WebAssembly thread, the three models one after another (the page's way): the runs, their softmaxes and
             the drops, timed in the page; the batch's transfer is not timed

The page would also have to cut the drawing into segments: ``stroke_segments`` is not ported to JavaScript, and its
Python time (numpy on at most 784 points) stands in for it, an estimate. Agreement: per drawing and slot, the
page's per-segment drops (int8) against the server's (float32): their correlation, whether both blame the same
segment most, and whether both explain the same class. The test page is page_inference.py's site (its files, its
server), with a page of its own beside it.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

from browser_support import launch  # noqa: E402
from page_inference import ORT_DIST, ORT_FILES, chromium_version, pct, serve, site  # noqa: E402
from records import write_record  # noqa: E402

from recognizer.inference import Recognizer  # noqa: E402
from recognizer.manifest import SLOTS  # noqa: E402
from recognizer.saliency import segment_map, stroke_segments  # noqa: E402
from tests.parity_support import drawbench_canvases, server_input  # noqa: E402
from webapp.analysis import saliency_maps  # noqa: E402
from webapp.served import ServedModels  # noqa: E402

WARMUP = 3  # drawings run first on each side and not counted: first calls allocate

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>page saliency benchmark</title>
<script src="/ort/ort.wasm.min.js"></script></head>
<body><script type="module">
import { openSlots, softmax } from '/inference.js';
ort.env.wasm.wasmPaths = '/ort/';
ort.env.wasm.numThreads = 1;
window.bench = {
  slots: null,
  async open(set) {
    const manifest = await (await fetch(`/sets/${set}/manifest.json`)).json();
    this.slots = await openSlots(ort, manifest, (file) => `/sets/${set}/${file}`);
    return this.slots.map((s) => s.slot);
  },
  // One drawing's occlusion batch (rows x 28 x 28 float32, base64): row 0 the drawing, row i+1 with segment i
  // blanked. Per slot: the target (row 0's top class) and each segment's drop in its probability, as segment_map.
  async occlude(b64, rows) {
    const batch = new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
    const t0 = performance.now();
    const slots = [];
    for (const s of this.slots) {
      const t = performance.now();
      const inputName = (s.input && s.input.name) || s.session.inputNames[0];
      const outputName = s.session.outputNames.includes('logits') ? 'logits' : s.session.outputNames[0];
      const tensor = new ort.Tensor('float32', batch, [rows, 1, 28, 28]);
      const logits = (await s.session.run({ [inputName]: tensor }, [outputName]))[outputName].data;
      const classes = logits.length / rows;
      const first = softmax(logits.subarray(0, classes));
      const target = first.indexOf(Math.max(...first));
      const drops = [];
      for (let r = 1; r < rows; r++) {
        drops.push(Math.max(0, first[target] - softmax(logits.subarray(r * classes, (r + 1) * classes))[target]));
      }
      slots.push({ slot: s.slot, label: s.labels[target], drops, ms: performance.now() - t });
    }
    return { ms: performance.now() - t0, slots };
  },
};
window.ready = true;
</script></body></html>
"""


def drawings(count: int) -> tuple[list[np.ndarray], str, int]:
    """(x28 inputs, where the test images came from, how many canvases the preprocessing refused)."""
    canvases, source = drawbench_canvases(count)
    read = [server_input(layer) for layer in canvases]
    inputs = [x.reshape(28, 28) for kind, x in read if kind == "input"]
    return inputs, source, len(read) - len(inputs)


def occlusion_batch(x28: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(n+1, 28, 28) float32: the drawing, then one copy per segment with it blanked (as segment_map builds it)."""
    batch = np.repeat(x28[None].astype(np.float32), int(labels.max()) + 1 + 1, axis=0)
    for i in range(int(labels.max()) + 1):
        batch[i + 1][labels == i] = 0.0
    return batch


def segment_drops(heat: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each segment's value on a segment map (its drop, scaled by the largest)."""
    return np.array([heat[labels == i].max() for i in range(int(labels.max()) + 1)])


def server_side(lab: ServedModels, slots: dict[str, str], inputs: list[np.ndarray]) -> tuple[dict, list]:
    """Per drawing: ms wall and CPU of stroke_segments, of it plus the three occlusion batches on three threads, and
    of saliency_maps as the app calls it; and the maps (per slot: segments' drops, target label) for the agreement."""
    names = list(slots.values())
    times: dict[str, list[float]] = {k: [] for k in ("segments wall", "segments cpu", "batches wall", "batches cpu",
                                                     "app wall", "app cpu")}
    maps = []
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        for i, x in enumerate(inputs[:WARMUP] + inputs):
            w0, c0 = time.perf_counter(), time.process_time()
            labels = stroke_segments(x)
            w1, c1 = time.perf_counter(), time.process_time()
            jobs = [pool.submit(segment_map, lab.recognizer, name, x, None, labels) for name in names]
            heats = [job.result() for job in jobs]
            w2, c2 = time.perf_counter(), time.process_time()
            saliency_maps(lab, x, names)
            w3, c3 = time.perf_counter(), time.process_time()
            if i < WARMUP:
                continue
            for key, ms in (("segments wall", w1 - w0), ("segments cpu", c1 - c0), ("batches wall", w2 - w0),
                            ("batches cpu", c2 - c0), ("app wall", w3 - w2), ("app cpu", c3 - c2)):
                times[key].append(ms * 1000)
            targets = [lab.recognizer.entry(n).labels[int(lab.recognizer.predict_batch(n, x[None])[0][0].argmax())]
                       for n in names]  # fmt: skip
            maps.append({slot: (segment_drops(h, labels), t) for slot, h, t in zip(slots, heats, targets, strict=True)})
    return times, maps


def page_side(page_models: Path, inputs: list[np.ndarray]) -> tuple[dict, list, dict]:
    """Per drawing: the page's ms for the three batches (and per slot), and its drops and targets."""
    from playwright.sync_api import sync_playwright

    recognizer = Recognizer(page_models)
    names = list(recognizer.default_slots().values())
    files = [recognizer.entry(n).path for n in names]
    times: dict[str, list[float]] = {"all": [], **{slot: [] for slot in SLOTS}}
    maps = []
    with tempfile.TemporaryDirectory(prefix="page-saliency-") as tmp, sync_playwright() as playwright:
        site(Path(tmp), {"page": (page_models, names, files)})
        (Path(tmp) / "saliency.html").write_text(PAGE)
        server, url = serve(Path(tmp))
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(url + "/saliency.html")
            page.wait_for_function("window.ready === true", timeout=60_000)
            page.evaluate("set => bench.open(set)", 0)
            for i, x in enumerate(inputs[:WARMUP] + inputs):
                batch = occlusion_batch(x, stroke_segments(x))
                done = page.evaluate("([b, rows]) => bench.occlude(b, rows)",
                                     [base64.b64encode(batch.tobytes()).decode(), len(batch)])
                if i < WARMUP:
                    continue
                times["all"].append(done["ms"])
                for s in done["slots"]:
                    times[s["slot"]].append(s["ms"])
                maps.append({s["slot"]: (np.array(s["drops"]), s["label"]) for s in done["slots"]})
        finally:
            browser.close()
            server.shutdown()
    return times, maps, {"models": names, "files": [f.name for f in files]}


def agreement(server: list[dict], page: list[dict]) -> dict:
    """Page (int8) against server (float32), per drawing and slot: the correlation of the segments' drops (where
    both vary), the page's most blamed segment being the server's too (or within 5% of its largest drop), and the
    same class explained."""
    correlations, same_top, near_top, same_target = [], [], [], []
    for s_maps, p_maps in zip(server, page, strict=True):
        for slot, (s_drops, s_target) in s_maps.items():
            p_drops, p_target = p_maps[slot]
            same_target.append(s_target == p_target)
            if s_drops.std() > 0 and p_drops.std() > 0:
                correlations.append(float(np.corrcoef(s_drops, p_drops)[0, 1]))
            if s_drops.max() > 0 and p_drops.max() > 0:
                same_top.append(int(s_drops.argmax()) == int(p_drops.argmax()))
                near_top.append(bool(s_drops[int(p_drops.argmax())] >= 0.95 * s_drops.max()))
    return {"maps": len(same_target), "correlations": correlations, "same_top_segment": float(np.mean(same_top)),
            "page_top_within_5pct_of_server_top": float(np.mean(near_top)), "compared_tops": len(same_top),
            "same_target": float(np.mean(same_target))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", type=int, default=60, help="drawing-benchmark canvases (refused ones dropped)")
    parser.add_argument("--models", type=Path, default=REPO / "exported_models")
    parser.add_argument("--page-models", type=Path, default=REPO / "exported_models" / "page")
    parser.add_argument("--record", default="page_saliency", help="the record's name under assets/benchmarks/")
    args = parser.parse_args(argv)
    missing = [n for n in ORT_FILES if not (ORT_DIST / n).is_file()]
    if missing:
        raise SystemExit(f"onnxruntime-web is not installed ({', '.join(missing)} missing): "
                         "run `make node_modules/.npm-installed`")
    inputs, source, refused = drawings(args.drawings)
    lab = ServedModels(args.models, REPO / "assets", threads=1)
    slots = lab.recognizer.default_slots()
    load_before = os.getloadavg()
    server, server_maps = server_side(lab, slots, inputs)  # before the browser starts: the process's CPU is its own
    page, page_maps, page_config = page_side(args.page_models, inputs)
    load_after = os.getloadavg()
    agree = agreement(server_maps, page_maps)
    segments = int(np.median([stroke_segments(x).max() + 1 for x in inputs]))

    def row(label: str, values: list[float]) -> list:
        return [label, pct(values, 50), pct(values, 95), float(np.mean(values))]

    rows = [row("server: stroke_segments + 3 occlusion batches on 3 threads, wall ms", server["batches wall"]),
            row("server: the same, CPU ms (all threads)", server["batches cpu"]),
            row("server: stroke_segments alone, wall ms", server["segments wall"]),
            row("server: saliency_maps as the app calls it (with overlays), wall ms", server["app wall"]),
            row("server: saliency_maps, CPU ms", server["app cpu"]),
            row("page: 3 occlusion batches, int8, 1 wasm thread, ms", page["all"]),
            *[row(f"page: {slot} model's batch, ms", page[slot]) for slot in SLOTS],
            row("page: + stroke_segments ported to JS (estimate: its Python time), ms",
                [a + b for a, b in zip(page["all"], server["segments wall"], strict=True)]),
            ["agreement: correlation of per-segment drops, page int8 vs server float32 (p5 in the p95 column)",
             pct(agree["correlations"], 50), pct(agree["correlations"], 5), float(np.mean(agree["correlations"]))],
            ["agreement: same most blamed segment, share", None, None, agree["same_top_segment"]],
            ["agreement: page's most blamed within 5% of the server's largest drop, share", None, None,
             agree["page_top_within_5pct_of_server_top"]],
            ["agreement: same class explained, share", None, None, agree["same_target"]]]
    for r in rows:
        print(f"  {r[0]:<80} p50 {r[1] if r[1] is None else round(r[1], 3)}  p95 "
              f"{r[2] if r[2] is None else round(r[2], 3)}  mean {r[3]:.3f}")
    conditions = (f"{len(inputs)} drawing-benchmark canvases ({refused} refused by the preprocessing left out; "
                  f"{WARMUP} more run first, not counted), median {segments} segments (a batch of "
                  f"{segments + 1} per model); {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before and "
                  f"{load_after[0]:.1f} after")
    print(conditions)
    path = write_record(
        "page_saliency", "The heat maps from the server or from the page: the same occlusion batches on both sides",
        {"columns": ["figure", "p50", "p95", "mean"], "rows": rows},
        {"drawings": len(inputs), "refused": refused, "test_images": source, "models": str(args.models),
         "page_models": str(args.page_models), **page_config, "server_threads": "1 per session, 3 sessions at once",
         "page_backend": "onnxruntime-web wasm, 1 thread", "chromium": chromium_version(),
         "load_before": load_before, "load_after": load_after},
        [conditions + ".",
         "Server: the served float32 models; CPU time is the process's (every thread), taken before the browser "
         "starts. Page: the int8 page models, the batch sent to the page first and not timed; stroke_segments is not "
         "ported, its Python wall time stands in for it (an estimate).",
         "Agreement: per drawing and slot; the correlation where both maps vary; 'within 5%' counts the page's most "
         "blamed segment when the server's drop for it is at least 95% of the server's largest (near-ties)."],
        data={"server_ms": server, "page_ms": page, "agreement": agree}, name=args.record)
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
