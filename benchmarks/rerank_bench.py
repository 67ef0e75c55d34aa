"""Re-ranking figures of issue 6: batch throughput, service latency under load, offline lift.

1. Batch: ``recsys.rank.rerank.rerank`` on ``--rows`` synthetic candidates (lists of 20, the production
   model's segments plus unknown ones); best of 3 runs, in candidates per second.
2. Service: ``trendrec serve``'s app in a uvicorn thread on loopback; a client in a separate process
   sends requests of ``--size`` candidates back to back over one keep-alive connection for
   ``--seconds``; p50 / p99 / max latency as the client sees it (request sent to whole response
   read), the handler's own time from the Server-Timing header, requests per second, errors (a
   non-200 answer, or a wrong item count in every 10th answer, which the client parses untimed).
3. Lift: ``trendrec evaluate-rerank`` on the store (Online Retail in the demo store): the pooled
   next-basket figures of ``--methods`` (default p_topfreq, base, segment_trend), every method
   retrained at each cut-off.

The machine is shared: figures are what this run measured, not a promise.

    .venv/bin/python benchmarks/rerank_bench.py --store /tmp/rrstore --seconds 30
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

log = logging.getLogger("rerank_bench")


def bench_batch(trends, rows: int, list_len: int = 20) -> dict:
    import pandas as pd

    from pipeline import schemas as s
    from recsys.rank.rerank import rerank

    rng = np.random.default_rng(0)
    segments = np.array([*trends[s.SEGMENT].astype(str), "unknown_a", "unknown_b"])
    users, n = rows // list_len, rows // list_len * list_len
    cands = pd.DataFrame({s.USER_ID: pd.array(np.repeat([f"c{i}" for i in range(users)], list_len), "str"),
                          s.ITEM_ID: pd.array([f"i{i}" for i in rng.integers(0, 4000, n)], "str"),
                          s.SEGMENT: pd.array(segments[rng.integers(0, len(segments), n)], "str"),
                          s.BASE_SCORE: rng.random(n)})
    times = []
    for _ in range(3):
        started = time.perf_counter()
        rerank(cands, trends, 0.3)
        times.append(time.perf_counter() - started)
    return {"rows": len(cands), "best_s": round(min(times), 3), "median_s": round(sorted(times)[1], 3),
            "candidates_per_s_best": round(len(cands) / min(times)),
            "candidates_per_s_median": round(len(cands) / sorted(times)[1])}


def payloads(segments: list[str], size: int, count: int = 8) -> list[bytes]:
    rng = np.random.default_rng(1)
    out = []
    for j in range(count):
        cands = [{"item_id": f"item{int(i)}", "segment": segments[int(g) % len(segments)],
                  "base_score": round(float(b), 6)}
                 for i, g, b in zip(rng.integers(0, 4000, size), rng.integers(0, 99, size), rng.random(size))]
        out.append(json.dumps({"user_id": f"user{j}", "candidates": cands}).encode())
    return out


def client(url: str, seconds: float, size: int, segments: list[str], max_requests: int) -> dict:
    """Back-to-back POST /rerank on one keep-alive connection; runs in its own process."""
    parsed = urlparse(url)
    bodies = payloads(segments, size)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    latencies, server, errors, started = [], [], 0, time.perf_counter()
    headers = {"content-type": "application/json"}
    while time.perf_counter() - started < seconds and len(latencies) < max_requests:
        body = bodies[len(latencies) % len(bodies)]
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/rerank", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            latencies.append(time.perf_counter() - t0)  # request sent -> whole response read
            ok = resp.status == 200 and (len(latencies) % 10 or len(json.loads(data)["items"]) == size)
            server.append(float(resp.getheader("server-timing", "app;dur=nan").split("=")[1]))
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            latencies.append(time.perf_counter() - t0)
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        errors += not ok
    elapsed = time.perf_counter() - started
    ms, app_ms = np.array(latencies) * 1000, np.array(server)

    def pct(values: np.ndarray, q: float) -> float:
        return round(float(np.nanpercentile(values, q)), 2) if len(values) else float("nan")

    return {"requests": len(ms), "errors": errors, "seconds": round(elapsed, 1),
            "requests_per_s": round(len(ms) / elapsed, 1), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99),
            "max_ms": pct(ms, 100), "app_p50_ms": pct(app_ms, 50), "app_p99_ms": pct(app_ms, 99)}


def bench_service(cfg, segments: list[str], seconds: float, size: int) -> dict:
    from recsys.serve.app import create_app, freeze_gc, serving

    app = create_app(cfg)
    freeze_gc()  # as `trendrec serve` does once its app is built
    with serving(app) as url:
        cmd = [sys.executable, __file__, "--client", url, "--seconds", str(seconds), "--size", str(size),
               "--segments", ",".join(segments)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_lift(cfg, methods: list[str], weeks: int) -> dict:
    from recsys.offline.evaluate_rerank import run_evaluate_rerank

    result = run_evaluate_rerank(cfg, weeks=weeks, methods=methods)
    return {"cutoffs": [row["cutoff"] for row in result["cutoffs"]], "output": result["output"],
            "pooled": {name: {k: v for k, v in row.items()} for name, row in result["pooled"].items()},
            "seconds": result["seconds"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="/tmp/rrstore", help="store with a production model")
    parser.add_argument("--config", default="trendrec.toml")
    parser.add_argument("--rows", type=int, default=2_000_000, help="batch candidates")
    parser.add_argument("--seconds", type=float, default=30.0, help="service load duration")
    parser.add_argument("--size", type=int, default=1000, help="candidates per request")
    parser.add_argument("--methods", default="p_topfreq,base,segment_trend",
                        help="evaluate-rerank methods for the lift part")
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--skip", default="", help="comma list of batch,service,lift to skip")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run as the load client
    parser.add_argument("--segments", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        segments = args.segments.split(",")
        print(json.dumps(client(args.client, args.seconds, args.size, segments, max_requests=1_000_000)))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipeline import schemas as s
    from pipeline.config import load_config
    from pipeline.store import Store, read_trends
    from recsys import registry

    cfg = load_config(args.config, store=args.store)
    store = Store(cfg.store)
    version = registry.read_production(store)["version"]
    trends = read_trends(registry.version_dir(store, version) / registry.TREND_FILE)
    segments = [*trends[s.SEGMENT].astype(str), "unknown_segment"]
    skip = set(args.skip.split(","))
    report = {"model_version": version}
    if "batch" not in skip:
        report["batch"] = bench_batch(trends, args.rows)
        print(json.dumps({"batch": report["batch"]}), flush=True)
    if "service" not in skip:
        report["service"] = bench_service(cfg, segments, args.seconds, args.size)
        print(json.dumps({"service": report["service"]}), flush=True)
    if "lift" not in skip:
        report["lift"] = bench_lift(cfg, args.methods.split(","), args.weeks)
        print(json.dumps({"lift": report["lift"]}, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
