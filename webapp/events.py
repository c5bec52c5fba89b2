"""Settings every UI event of the page shares: no spinner over the page, and not part of the API.

Only ``webapp.api`` declares endpoints (/predict, /models); every event a tab wires is private.
"""

from __future__ import annotations

from typing import Any

QUIET: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
