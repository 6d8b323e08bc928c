"""Who may call the API and how often: a bearer token and a per-client token bucket."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

from fastapi import HTTPException, Request

from evlf.server.settings import ServerSettings


def check_token(request: Request, settings: ServerSettings) -> None:
    """401 unless `Authorization: Bearer <token>` matches (when the server has a token)."""
    if settings.token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
        raise HTTPException(401, "missing or wrong API token: send `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"})


def client_key(request: Request) -> str:
    """The client's address and (hashed: keys stay in memory) the token it sends, so a shared token is not a shared limit."""
    host = request.client.host if request.client else "unknown"
    auth = request.headers.get("authorization", "")
    return f"{host}/{hashlib.sha256(auth.encode()).hexdigest()[:16]}"


class RateLimiter:
    """A token bucket per client: `per_minute` sustained, `burst` at once; 0 per minute is no limit."""

    def __init__(self, per_minute: int, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                retry = max(1, round((1.0 - tokens) / self.rate))
                raise HTTPException(429, f"too many requests: at most {round(self.rate * 60)} a minute", headers={"Retry-After": str(retry)})
            if len(self._buckets) >= self.max_clients and key not in self._buckets:
                self._buckets.clear()  # bounded memory under a flood of addresses
            self._buckets[key] = (tokens - 1.0, now)
