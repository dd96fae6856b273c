"""The venue's market list (ccxt's raw market dicts) cached in a JSON file between starts.

A restart then needs no markets request while the cache is younger than its maximum age.
The file is written atomically (temporary file, fsync, rename, fsync of the folder), so a
crash leaves the old cache or the new one. An unreadable, corrupt or foreign file is not an
error: `read` says why in one warning line and returns None, and the caller fetches the
markets again. A cache older than the maximum age is never used, not even when the venue
cannot be reached: contract sizes must be the venue's current ones before any order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.settings.envfile import atomic_write_bytes

log = logging.getLogger(__name__)

FORMAT = 1


class MarketsCache:
    """One cache file for one venue; `max_age_ms` 0 means the file is never read (still written)."""

    def __init__(self, path: str | Path, *, venue: str, max_age_ms: int, clock_ms: Callable[[], int]):
        self.path = Path(path).expanduser()
        self.venue = venue
        self.max_age_ms = max_age_ms
        self._clock = clock_ms

    def read(self) -> list[dict[str, Any]] | None:
        """The cached raw markets when the file is fresh and well formed, else None."""
        if self.max_age_ms <= 0:
            return None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("markets cache %s unreadable (%s); loading markets from %s", self.path,
                        exc.strerror or type(exc).__name__, self.venue)
            return None
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("venue") != self.venue:
                raise ValueError("not a markets cache of this venue")
            saved, markets = doc["saved_ms"], doc["markets"]
            if not isinstance(saved, int) or not isinstance(markets, list) or not markets \
                    or not all(isinstance(m, dict) and isinstance(m.get("symbol"), str) for m in markets):
                raise ValueError("malformed market list")
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError and UnicodeError are ValueErrors
            log.warning("markets cache %s ignored (%s); loading markets from %s", self.path,
                        str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__, self.venue)
            return None
        age = self._clock() - saved
        if age < 0 or age > self.max_age_ms:
            return None  # too old, or from the future (the clock was stepped back): fetch
        return markets

    def write(self, markets: Sequence[Mapping[str, Any]]) -> bool:
        """Replace the cache with `markets`; a failure is one warning, never an error (the
        markets in memory are good, only the next start pays a request)."""
        try:
            data = json.dumps({"format": FORMAT, "venue": self.venue, "saved_ms": int(self._clock()),
                               "markets": list(markets)}, separators=(",", ":"), allow_nan=False).encode()
            atomic_write_bytes(self.path, data, mode=0o644)
        except (OSError, TypeError, ValueError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            log.warning("markets cache %s not written (%s)", self.path, detail)
            return False
        return True
