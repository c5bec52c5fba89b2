"""The EMNIST lab's web app: draw a character, compare three models, see why, browse the maps and results.

    python app.py [--host 127.0.0.1] [--port 7860] [--share] [--models exported_models] [--assets assets] [--cuda]
                  [--drawings data/drawings.sqlite3] [--no-keep] [--coverage 0.9] [--keep-limit 20000]
                  [--keep-mb 200] [--keep-rate 30] [--predict-rate 600] [--no-browser-inference]

The entry point (Hugging Face Spaces run app.py): arguments, then ``webapp.demo.build_demo`` and ``launch``.
The app itself is the ``webapp`` package; no torch anywhere on this path.

``--no-browser-inference``: the page never runs the models itself (``/page/config.json`` answers enabled false, "turned
off by the server"); the server answers every drawing, as it does where the page cannot (``webapp.page_files``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from recognizer.conformal import DEFAULT_LEVEL, LEVELS
from recognizer.drawings import DEFAULT_LIMITS, DEFAULT_PATH, StoreLimits
from webapp.api import API_BATCH
from webapp.demo import build_demo, launch
from webapp.limits import KEEPS_PER_MINUTE, PREDICTS_PER_MINUTE, Limits

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The EMNIST lab's web app.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--models", type=Path, default=ROOT / "exported_models", help="folder with manifest.json")
    parser.add_argument("--assets", type=Path, default=ROOT / "assets", help="folder with embeddings/ and results/")
    parser.add_argument("--cuda", action="store_true", help="run the models on CUDA when available")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model")
    parser.add_argument("--concurrency", type=int, help="requests processed at once (default: CPU cores, up to 4)")
    parser.add_argument("--api-batch", type=int, default=API_BATCH,
                        help=f"queued /predict calls handled together (default {API_BATCH}; 1: one at a time)")
    parser.add_argument("--drawings", type=Path, default=DEFAULT_PATH,
                        help="the kept-drawings store, a SQLite file (default data/drawings.sqlite3, git-ignored)")
    parser.add_argument("--no-keep", action="store_true",
                        help="turn keeping drawings off (a public deployment); the app still reads drawings")
    parser.add_argument("--coverage", type=float, default=DEFAULT_LEVEL, choices=LEVELS, metavar="LEVEL",
                        help="how often a model's answer set holds the right character, on drawings like those it "
                             f"was calibrated on (default {DEFAULT_LEVEL:g}; one of "
                             + ", ".join(f"{v:g}" for v in LEVELS) + ")")
    parser.add_argument("--keep-limit", type=int, default=DEFAULT_LIMITS.drawings,
                        help=f"the most drawings the store keeps (default {DEFAULT_LIMITS.drawings:,}; 0: no limit)")
    parser.add_argument("--keep-mb", type=float, default=DEFAULT_LIMITS.bytes / 1e6,
                        help=f"the most MB the store takes on disk (default {DEFAULT_LIMITS.bytes / 1e6:g}; 0: none)")
    parser.add_argument("--keep-rate", type=int, default=KEEPS_PER_MINUTE,
                        help=f"keeps a minute from one visitor (default {KEEPS_PER_MINUTE}; 0: no limit)")
    parser.add_argument("--predict-rate", type=int, default=PREDICTS_PER_MINUTE,
                        help=f"POST /api/predict calls a minute from one address (default {PREDICTS_PER_MINUTE}; "
                             "0: no limit)")  # fmt: skip
    parser.add_argument("--no-browser-inference", action="store_true",
                        help="the page never answers drawings itself with onnxruntime-web: the server answers all")
    return parser.parse_args(argv)


def limits_from(args: argparse.Namespace) -> Limits:
    store = StoreLimits(args.keep_limit or None, int(args.keep_mb * 1e6) or None)
    return Limits(store, args.keep_rate, args.predict_rate)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests, one line each
    demo = build_demo(args.models, args.assets, use_cuda=args.cuda, threads=args.threads, api_batch=args.api_batch,
                      drawings=args.drawings, keep=not args.no_keep, level=args.coverage,
                      limits=limits_from(args), page_inference=not args.no_browser_inference)
    launch(demo, args.host, args.port, args.share, concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
