"""What bounds one client: a per-client rate on keeping and on ``POST /api/predict`` (token buckets, by the
connection's address and, on the page, by its session), answered with HTTP 429, ``Retry-After`` and words.

Defaults a person never meets (a keep takes a few seconds of drawing; the page's own answers do not go through
``POST /api/predict``) and a loop meets within a second. The store's own limit in drawings and bytes is
``recognizer.drawings.StoreLimits``; ``Limits`` carries both, as ``app.py``'s flags set them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recognizer.drawings import DEFAULT_LIMITS, StoreLimits

KEEPS_PER_MINUTE = 30
PREDICTS_PER_MINUTE = 600  # 10 a second: a script's batch; app_load.py's 50 users need --predict-rate 0
MAX_CLIENTS = 10_000  # buckets remembered; the longest idle are forgotten first (a full bucket loses nothing)


class RateLimited(Exception):
    """Too many requests from this client: ``retry_after`` seconds until the next is allowed; ``message`` in words."""

    def __init__(self, what: str, per_minute: int, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        self.message = (f"Slow down: this app takes at most {per_minute} {what} a minute from one visitor. "
                        f"Try again in {self.retry_after} s.")  # fmt: skip
        super().__init__(self.message)


@dataclass
class RateLimiter:
    """Token buckets per key: ``per_minute`` sustained, bursts of ``burst`` (default: a minute's worth).
    ``per_minute`` 0 or less: no limit."""

    what: str
    per_minute: int
    burst: int | None = None
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def on(self) -> bool:
        return self.per_minute > 0

    def take(self, *keys: str | None) -> None:
        """One request for every key (address, session) at once, or ``RateLimited`` and none is charged."""
        if not self.on:
            return
        keys = tuple(k for k in keys if k)
        capacity, rate = float(self.burst or self.per_minute), self.per_minute / 60.0
        now = self.clock()
        with self._lock:
            levels = {}
            for key in keys:
                tokens, at = self._buckets.get(key, (capacity, now))
                levels[key] = min(capacity, tokens + (now - at) * rate)
            short = [1.0 - level for level in levels.values() if level < 1.0]
            if short:
                raise RateLimited(self.what, self.per_minute, max(short) / rate)
            for key, level in levels.items():
                self._buckets[key] = (level - 1.0, now)
                self._buckets.move_to_end(key)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)


@dataclass
class Limits:
    """The app's bounds: the store's size, and the rates of keeping and of ``POST /api/predict``."""

    store: StoreLimits = DEFAULT_LIMITS
    keeps_per_minute: int = KEEPS_PER_MINUTE
    predicts_per_minute: int = PREDICTS_PER_MINUTE

    def __post_init__(self) -> None:
        self.keeps = RateLimiter("keeps", self.keeps_per_minute)
        self.predicts = RateLimiter("answers through POST /api/predict", self.predicts_per_minute)


def client_keys(request: Any) -> tuple[str | None, str | None]:
    """(address, session) of a Starlette or Gradio request: the connection's address, and the page's session
    (Gradio's ``session_hash``; None for a plain HTTP call). Behind a proxy the address is the proxy's unless the
    server is told to trust its forwarded header (uvicorn's ``FORWARDED_ALLOW_IPS``)."""
    if request is None:
        return None, None
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    session = getattr(request, "session_hash", None)
    return (f"addr:{host}" if host else None), (f"session:{session}" if session else None)
