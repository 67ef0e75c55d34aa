"""``trendrec serve``: a small HTTP service that re-ranks one candidate list per request.

It loads the production release (``registry.production``: verified against its digests) into a
``recsys.rank.signals.ReleaseSignals``: the segment trends of ``Release.trend_file`` and, when the
release has a customer model, every user's push-time scores of ``Release.scores_file``. No model
runs and TensorFlow is never imported. Each list goes through ``recsys.rank.signals.rank_rows``, the
batch's path (``trendrec rerank``): a (user, item) pair the release scored is ordered by its
probability, any other item by its segment's trend, all blended with the order of base_score
(recsys.rank.blend), so the same list gets the same order, final scores and signals from both.
Each item says which signal ranked it; segments the release does not know are neutral, counted in
the response and logged once each; every candidate comes back once. A candidate sent without a
segment gets its item's segment in the store's events (read once per release load, one entry per
item: pipeline.lists); items the events never had are counted in ``unknown_items``. A numeric
``user_id`` is read as its decimal string.

    POST /rerank   {"user_id": "17850",                  # optional (17850 too), echoed back as a string
                    "weight": 0.3,                      # optional, in [0, 1]; default: rerank.weight, else the release's
                    "candidates": [{"item_id": "85123A", "segment": "home_decor", "base_score": 0.9}, ...]}
                -> {"user_id", "model_version", "weight", "customer_known",
                    "unknown_segments": {"count", "segments"}, "unknown_items": {"count", "items"},
                    "items": [{"item_id", "trend", "score", "signal", "final_score", "rank"}, ...]}  # best first
    GET  /health -> {"status": "ok", "model_version": "v0003", "segments": 14, "customers": 4302,
                     "reload_error": null, "live_results": null}
                    # "degraded" (200) while production's version cannot be loaded and an older one
                    # still serves, or while it trails the best baseline on live results
                    # monitor.trailing_weeks weeks in a row ("live_results" says so and names
                    # `trendrec models rollback`); "no_model" (503) before the first push

Bad input is answered with a 4xx and a reason: 422 (schema: missing field, non-finite score,
weight outside [0, 1]), 413 (body over ``max_request_bytes`` or more than ``max_request_candidates``
candidates), 503 while no model is in production. The production model is picked up without a
restart: every request stats ``models/production.json`` (microseconds) and reloads the release when
the file changed; a release that cannot be read is logged and the previous one keeps serving, and
it is loaded again as soon as one of its files changes (a repair: a request then stats them too) or
every ``RETRY_SECONDS``, so /health turns "ok" without production.json changing.
The OpenAPI schema is at /openapi.json, its pages at /docs and /redoc; their JavaScript and CSS come
from the installed fastapi-offline package, so they render on a host without internet. Binds
127.0.0.1 unless told otherwise.

    trendrec serve --port 8000 &
    curl -s localhost:8000/rerank -H 'content-type: application/json' \
        -d '{"candidates": [{"item_id": "a", "segment": "x", "base_score": 1.0}]}'
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from pydantic_core import to_json

from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.lists import fill_segments, item_segments
from pipeline.store import Store
from recsys import registry
from recsys.rank.blend import SIGNALS
from recsys.monitor.gate import trailing_reason
from recsys.monitor.skew import SkewCounter, count_lists
from recsys.rank.signals import ReleaseSignals, rank_rows, trend_weight
from recsys.serve.limits import BodyLimit
from recsys.serve.schema import (REQUEST, Health, RankedItem, RerankRequest, RerankResponse, UnknownItems,
                                 UnknownSegments)
from recsys.serve.timeouts import BodyTimeout, uvicorn_options

log = logging.getLogger(__name__)

MAX_UNKNOWN_LISTED = 20  # unknown segment names listed in a response
NO_RELEASE = ReleaseSignals({})  # before the first push
RETRY_SECONDS = 30.0  # a release that failed to load is loaded again this often, or as soon as its files change


class ServeError(TrendrecError):
    """The service cannot start or a trend table cannot be loaded."""


# --- production's live results, read again when the table changes ---------------------------------
class LiveVerdict:
    """Why production is degraded on live results (recsys.monitor.gate.trailing_reason), or None; the live
    results table is read again only when it or the version changes (a stat per /health)."""

    def __init__(self, store: Store, weeks: int):
        self.store, self.weeks = store, weeks
        self._key: tuple | None = None
        self._reason: str | None = None

    def reason(self, version: str | None) -> str | None:
        try:
            st = os.stat(self.store.live_results)
            key = (version, st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            key = (version, None)
        if key != self._key:
            try:
                self._reason = trailing_reason(self.store, self.weeks, version) if version and key[1] else None
            except (OSError, ValueError, KeyError) as exc:  # an unreadable table must not take /health down
                log.warning("live results of %s cannot be read: %s", self.store.live_results, exc)
                self._reason = None
            self._key = key
        return self._reason


# --- the production release, reloaded when production.json changes -------------------------------
class TrendState:
    """The production release's signals (trends and customer scores), swapped when production.json changes."""

    def __init__(self, store: Store, memory_limit: str = "1GB"):
        self.store, self.memory_limit = store, memory_limit
        self.path = store.models / registry.PRODUCTION_FILE
        self.signals: ReleaseSignals = NO_RELEASE
        self.item_segments: dict[str, str] = {}  # {item: segment} of the store's events: one entry per item
        self.reload_error: str | None = None
        self._key: tuple | None = None
        self._broken: tuple[list[Path], list[tuple | None]] | None = None  # a failed load's files, stats
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        return self.signals.version

    @property
    def trends(self) -> dict[str, float]:
        return dict(self.signals.trends)

    def refresh(self) -> None:
        """Stat production.json; when it changed, load the release it names. While that release cannot be
        loaded, stat its files too and load it again once they change (a repair) or RETRY_SECONDS passed."""
        try:
            st = os.stat(self.path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            key = None
        if key == self._key and not self._retry_due():
            return
        with self._lock:
            if key != self._key or self._retry_due():
                self._load(key)

    def _load(self, key: tuple | None) -> None:
        try:
            release = registry.production(self.store)  # verified once per load: hashes are not free
            self.signals = NO_RELEASE if release is None else ReleaseSignals.load(release)
            self.reload_error, self._broken = None, None
            self._load_item_segments()
            if release is not None:
                log.info("serving %s: trends of %d segments, customer scores of %d customers", self.version,
                         len(self.signals.trends), len(self.signals.scores))
        except (TrendrecError, OSError, ValueError, KeyError) as exc:
            if str(exc) != self.reload_error:  # a retry that fails the same way is not logged again
                log.error("cannot load the production release, still serving %s: %s", self.version, exc)
            self.reload_error = str(exc)
            self._broken = self._broken_files()
            self._retry_at = time.monotonic() + RETRY_SECONDS
        self._key = key  # a broken version is retried when its files change or after RETRY_SECONDS

    def _retry_due(self) -> bool:
        """True while the release failed to load and its files changed since, or RETRY_SECONDS passed:
        a stat per file of the broken version, never a hash."""
        if self.reload_error is None or self._broken is None:
            return False
        return time.monotonic() >= self._retry_at or _stats(self._broken[0]) != self._broken[1]

    def _broken_files(self) -> tuple[list[Path], list[tuple | None]] | None:
        """The folders and files of the version production.json names, with their stats now."""
        try:
            folder = self.store.models / registry.check_version(registry.read_production(self.store)["version"])
            paths = [folder, *sorted(folder.rglob("*"))] if folder.is_dir() else [folder]
        except (TrendrecError, OSError, ValueError, KeyError, TypeError):
            paths = [self.path]  # production.json itself is unreadable: its stat is the key already
        return paths, _stats(paths)

    def _load_item_segments(self) -> None:
        """The store's {item: segment}, read once per release load (items sent without a segment get theirs)."""
        try:
            self.item_segments = item_segments(self.store, self.memory_limit)
        except (TrendrecError, OSError, duckdb.Error) as exc:
            log.error("cannot read the items' segments from %s: items sent without a segment are neutral: %s",
                      self.store.raw, exc)
            self.item_segments = {}


def _stats(paths: list[Path]) -> list[tuple | None]:
    """(inode, mtime, size) of each path, None for one that is gone."""
    out: list[tuple | None] = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return out


def load_trends(version_dir: Path) -> dict[str, float]:
    """{segment: trend} of a verified version folder's trend table (read_trends checks the values)."""
    release = registry.Release(version_dir.name, version_dir, registry.read_metadata(version_dir))
    return dict(ReleaseSignals.load(release).trends)


def rerank_list(req: RerankRequest, signals: ReleaseSignals, weight: float,
                customer_weight: float = 1.0) -> tuple[list[RankedItem], UnknownSegments]:
    """One list through the batch's path (recsys.rank.signals.rank_rows); its items best first and
    its unknown segments."""
    cands = req["candidates"]
    items, segments = [c["item_id"] for c in cands], [c.get("segment") for c in cands]
    base = np.array([c["base_score"] for c in cands], float)
    ranked = rank_rows(signals, np.zeros(len(cands), np.int64), req.get("user_id"), items, segments, base,
                       weight, customer_weight)
    out = ranked.blended
    trend_l, final_l, signal_l = np.nan_to_num(ranked.trend).tolist(), out.final.tolist(), out.signal.tolist()
    prob_l = [None if math.isnan(p) else p for p in ranked.score.tolist()]
    ranked_items = [{"item_id": items[i], "trend": trend_l[i], "score": prob_l[i],
                     "signal": SIGNALS[signal_l[i]], "final_score": final_l[i], "rank": r}
                    for r, i in enumerate(out.order.tolist(), start=1)]
    counts = signals.unknown_segments(segments, ranked.trend)
    return ranked_items, {"count": sum(counts.values()), "segments": list(counts)[:MAX_UNKNOWN_LISTED]}


def store_segments(req: RerankRequest, known: dict[str, str]) -> UnknownItems:
    """Give each candidate sent without a segment (absent, null or empty) its item's segment in the
    store's events (pipeline.lists.fill_segments), in place; the candidates whose item has none."""
    cands = req["candidates"]
    segments = [c.get("segment") for c in cands]
    if None not in segments and "" not in segments:  # the JSON schema allows no other missing value (NaN)
        return {"count": 0, "items": []}
    filled, _, unknown = fill_segments([c["item_id"] for c in cands], segments, known)
    for cand, segment in zip(cands, filled):
        cand["segment"] = segment
    return unknown


# --- the app --------------------------------------------------------------------------------------
def create_app(cfg: Config, *, max_bytes: int | None = None, max_candidates: int | None = None) -> FastAPI:
    """The FastAPI app for ``cfg``'s store; limits default to rerank.max_request_bytes/_candidates."""
    max_bytes = int(max_bytes or cfg.rerank.max_request_bytes)
    max_candidates = int(max_candidates or cfg.rerank.max_request_candidates)
    state = TrendState(Store(cfg.store), cfg.aggregate.memory_limit)
    live = LiveVerdict(Store(cfg.store), cfg.monitor.trailing_weeks)
    state.refresh()
    skew = SkewCounter(state.store, "serve")  # what it could not score, per day (monitor/skew/)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        skew.flush()  # the counts since the last flush, when the server stops

    app = FastAPIOffline(title="trendrec re-rank service", version="1",  # /docs assets: no CDN
                         description=(__doc__ or "").split("\n\n")[0], lifespan=lifespan)
    app.state.trends, app.state.requests, app.state.limits, app.state.skew = state, 0, cfg.rerank, skew
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
    app.add_middleware(BodyTimeout, timeout=cfg.rerank.body_timeout)  # outermost: bounds BodyLimit's reads too
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.openapi = lambda: _openapi(app)

    @app.get("/health", response_model=Health)
    async def health() -> Response:
        state.refresh()
        signals = state.signals
        # "degraded": still serving the last good version because production's could not be loaded, or the
        # version trails the best baseline on live results monitor.trailing_weeks weeks in a row
        trailing = live.reason(signals.version)
        status = "no_model" if not signals.version else "degraded" if state.reload_error or trailing else "ok"
        body = {"status": status, "model_version": signals.version, "segments": len(signals.trends),
                "customers": len(signals.scores), "reload_error": state.reload_error, "live_results": trailing}
        return JSONResponse(body, status_code=200 if signals.version else 503)

    @app.post("/rerank", response_model=RerankResponse, openapi_extra=_REQUEST_DOC,
              responses={413: {"description": "body or candidate list too large"},
                         422: {"description": "invalid request: where and why"},
                         503: {"description": "no model in production"}})
    async def rerank_endpoint(request: Request) -> Response:
        started = time.perf_counter()
        app.state.requests += 1
        try:
            req = REQUEST.validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_input=False)) from None
        if len(req["candidates"]) > max_candidates:
            raise HTTPException(413, f"{len(req['candidates'])} candidates; at most {max_candidates} "
                                     f"per request")
        state.refresh()
        signals = state.signals  # one release for the whole request, even if a reload swaps it
        if signals.version is None:
            raise HTTPException(503, "no model in production: run `trendrec push`")
        weight = req.get("weight")
        weight = trend_weight(cfg.rerank.weight, signals) if weight is None else weight
        unknown_items = store_segments(req, state.item_segments)
        items, unknown = rerank_list(req, signals, weight, cfg.rerank.customer_weight)
        cands = req["candidates"]
        count_lists(skew, signals.version, [req.get("user_id")] * len(cands), [c["item_id"] for c in cands],
                    [c.get("segment") for c in cands], signals.scores.__contains__, signals.scores.has_item,
                    signals.trends)
        if unknown["count"]:
            _warn_unknown(unknown["segments"], signals.version)
        body = {"user_id": req.get("user_id"), "model_version": signals.version, "weight": weight,
                "customer_known": req.get("user_id") in signals.scores, "unknown_segments": unknown,
                "unknown_items": unknown_items, "items": items}
        took = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"  # parse + re-rank + encode
        return Response(to_json(body), media_type="application/json", headers={"server-timing": took})

    return app


_WARNED: set[str] = set()  # unknown segments already logged (bounded: MAX_WARNED names)
MAX_WARNED = 1000


def _warn_unknown(segments: list[str], version: str | None) -> None:
    """Log each unknown segment once (a shop sending "shoes" all day gets one line, not millions)."""
    new = [seg for seg in segments if seg not in _WARNED]
    if new and len(_WARNED) < MAX_WARNED:
        _WARNED.update(new)
        log.warning("segments unknown to %s are neutral in re-ranking: %s (`trendrec segments` lists the known ones)",
                    version, ", ".join(new))


_REQUEST_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/RerankRequest"}}}}}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request TypedDicts (the endpoint reads its body itself, for speed)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        request = REQUEST.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(request.pop("$defs", {}))
        components["RerankRequest"] = request
        app.openapi_schema = schema
    return app.openapi_schema


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with where and why only: echoing the input back could be large or not JSON (NaN)."""
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
              for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


# --- running it -------------------------------------------------------------------------------------
def _server(app: FastAPI, host: str, port: int, log_level: str = "warning"):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False, log_level=log_level,
                                         **uvicorn_options(app.state.limits)))


@contextlib.contextmanager
def serving(app: FastAPI, host: str = "127.0.0.1", timeout: float = 20.0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free port of ``host``; yield its base URL; always stop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = _server(app, host, sock.getsockname()[1])
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise ServeError(f"the server on {host}:{sock.getsockname()[1]} did not start in {timeout} s")
            time.sleep(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def freeze_gc() -> None:
    """Move everything alive now (imported modules, the app, the trend table) out of the cyclic GC.

    A request allocates a few thousand short-lived objects; without this, the occasional full
    collection walks every object pandas and pyarrow left behind at import and shows up as a tail
    latency (figures in benchmarks/README.md).
    """
    gc.collect()
    gc.freeze()


def run_serve(cfg: Config, host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """Serve until interrupted (Ctrl-C / SIGTERM); return what was served. The port is checked and bound
    before the model loads: out of 1..65535, or busy, is one ``ServeError`` naming it."""
    sock = listening_socket(host, port)
    try:
        app = create_app(cfg)
        freeze_gc()
        state: TrendState = app.state.trends
        if state.version is None:
            log.warning("no model in production in %s yet: /rerank answers 503 until one is pushed", cfg.store)
        log.info("serving on http://%s:%d (model %s)", host, port, state.version)
        started = time.monotonic()
        try:
            _server(app, host, port, log_level="info").run(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits (code 3) when its start-up fails; its log says why
            raise ServeError(f"the server on {host}:{port} did not start (uvicorn exit {exc.code}): "
                             "run with -v for its log") from None
    finally:
        sock.close()
    return {"host": host, "port": port, "requests": app.state.requests, "model_version": state.version,
            "seconds": round(time.monotonic() - started, 1)}


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening on ``host:port``, or a one-line ``ServeError`` saying why not."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ServeError(f"--port must be 1 to 65535, got {port!r}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except socket.gaierror as exc:
        raise ServeError(f"cannot resolve --host {host!r} ({exc.strerror}): give an address such as "
                         "127.0.0.1 or 0.0.0.0") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is already in use: stop what listens there "
                             f"(`ss -ltnp 'sport = :{port}'` shows it) or give another --port") from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
