"""Token, rate limit and the bind address."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from evlf.core.errors import ConfigError
from evlf.server import ServerSettings, create_app

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, gated, ctx):
    settings = ServerSettings(token=TOKEN, rate_limit_per_minute=60, rate_burst=3, upload_parent=tmp_path_factory.mktemp("up"))
    with TestClient(create_app(ctx, settings=settings, backend=gated)) as client:
        yield client


def test_the_api_needs_the_bearer_token(guarded, bodies):
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/v1/graphs").status_code == 401
    assert guarded.get("/v1/graphs", headers={"Authorization": "Bearer wrong-token-of-length"}).status_code == 401
    files = {"files": ("a.png", bodies.png(), "image/png")}
    r = guarded.post("/v1/diagnose", files=files, data={"graph": "direct", "specialty": "radiology"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    ok = guarded.post("/v1/diagnose", files=files, data={"graph": "direct", "specialty": "radiology"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200, ok.text


def test_each_client_is_rate_limited(guarded):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    codes = [guarded.post("/v1/diagnose", data={"format": "pdf"}, files={"files": ("a.png", b"x")}, headers=headers).status_code for _ in range(6)]
    assert 429 in codes and codes[0] != 429
    limited = guarded.post("/v1/diagnose", data={"format": "pdf"}, files={"files": ("a.png", b"x")}, headers=headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host):
    ServerSettings(host=host).check_exposure()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_any_other_address_needs_a_token(host):
    with pytest.raises(ConfigError, match="--token or EVLF_API_TOKEN"):
        ServerSettings(host=host).check_exposure()
    ServerSettings(host=host, token=TOKEN).check_exposure()


def test_serve_refuses_to_start_on_a_public_address_without_a_token():
    env = {k: v for k, v in os.environ.items() if k != "EVLF_API_TOKEN"}
    cmd = [sys.executable, "-m", "evlf", "serve", "--host", "0.0.0.0", "--backend", "tiny"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert "--token or EVLF_API_TOKEN" in result.stderr + result.stdout and "Traceback" not in result.stderr
