"""Loopback load benchmark of `evlf serve` with the demo backend: does concurrency buy throughput?

Starts the server on 127.0.0.1 (never another address), sends a bounded number
of /v1/diagnose requests at concurrency 1 and then 4, and reports p50/p95
latency and throughput for each, the server's memory (RSS) before and after,
and the load average the machine held meanwhile. Goal: concurrency 4 gives at
least 1.5x the throughput of concurrency 1 (the shared Pipeline batches
concurrent requests' model calls).

Prints its figures; the last line is one JSON object.
Usage: python benchmarks/server_load.py [--requests 24] [--max-seconds 180] [--graph full] [--backend demo]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"  # loopback only, by design


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(backend: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "evlf", "serve", "--host", HOST, "--port", str(port), "--backend", backend,
           "--rate-limit", "0", "--upload-dir", str(tmp)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EVLF_CASE_STORE": str(tmp / "no-store")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return proc, f"http://{HOST}:{port}"


def wait_healthy(httpx, url: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    raise SystemExit("the server did not come up in time")


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every half second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.samples.append(os.getloadavg()[0])


def phase(httpx, url: str, image: bytes, graph: str, concurrency: int, n: int, max_s: float) -> dict:
    """`n` requests from `concurrency` clients (bounded by `max_s`): latencies and throughput."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    todo = iter(range(n))
    deadline = time.monotonic() + max_s

    def client() -> None:
        with httpx.Client(base_url=url, timeout=max_s) as c:
            while time.monotonic() < deadline:
                with lock:
                    if next(todo, None) is None:
                        return
                t = time.perf_counter()
                r = c.post("/v1/diagnose", files={"files": ("study.dcm", image, "application/dicom")}, data={"graph": graph})
                with lock:
                    (latencies if r.status_code == 200 else errors).append(time.perf_counter() - t if r.status_code == 200 else r.text[:200])

    sampler = LoadSampler()
    sampler.start()
    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    sampler.stop.set()
    lat = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(lat) / wall, 3) if wall else 0.0,
        "p50_s": round(statistics.median(lat), 3) if lat else None,
        "p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 3) if lat else None,
        "load_avg_mean": round(statistics.fmean(sampler.samples), 2) if sampler.samples else None,
        "load_avg_max": round(max(sampler.samples), 2) if sampler.samples else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=24, help="requests per concurrency level")
    parser.add_argument("--max-seconds", type=float, default=180, help="time bound per concurrency level")
    parser.add_argument("--graph", default="full")
    parser.add_argument("--backend", default="demo")
    args = parser.parse_args()

    import httpx
    from pydicom.data import get_testdata_file

    image = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="evlf-server-bench-"))
    proc, url = start_server(args.backend, tmp)
    try:
        wait_healthy(httpx, url, proc)
        phase(httpx, url, image, args.graph, 2, 4, args.max_seconds)  # warm-up: graph compile, first decode
        rss_before = rss_mib(proc.pid)
        runs = [phase(httpx, url, image, args.graph, c, args.requests, args.max_seconds) for c in (1, 4)]
        rss_after = rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        left = [p for p in tmp.rglob("*") if p.is_file()]
        shutil.rmtree(tmp, ignore_errors=True)
    one, four = runs
    speedup = four["throughput_rps"] / one["throughput_rps"] if one["throughput_rps"] else 0.0
    print(f"evlf serve on {HOST}, backend {args.backend}, graph {args.graph}, {os.cpu_count()} CPUs")
    for r in runs:
        print(f"  concurrency {r['concurrency']}: {r['requests']} ok, {r['errors']} errors in {r['wall_s']} s -> "
              f"{r['throughput_rps']} req/s; p50 {r['p50_s']} s, p95 {r['p95_s']} s; load avg mean {r['load_avg_mean']}, max {r['load_avg_max']}")
    print(f"  throughput x{speedup:.2f} at concurrency 4 (goal >= 1.5)")
    print(f"  server RSS {rss_before:.0f} MiB before the load, {rss_after:.0f} MiB after; files left in the upload folder: {len(left)}")
    print(json.dumps({
        "benchmark": "server_load", "backend": args.backend, "graph": args.graph, "cpus": os.cpu_count(),
        "c1": one, "c4": four, "speedup_c4_over_c1": round(speedup, 2), "goal_met": speedup >= 1.5,
        "rss_mib_before": round(rss_before, 1), "rss_mib_after": round(rss_after, 1), "uploads_left": len(left),
    }))


if __name__ == "__main__":
    main()
