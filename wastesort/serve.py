"""The model as a service: an HTTP inference API with batching, rollouts and metrics.

``wastesort serve`` runs it. The service serves the registry's ``champion`` and, as
``exports/rollout.json`` says, sends part of the traffic to the ``challenger``:

- ``canary``: ``percent`` of requests, drawn at random, are answered by the challenger;
- ``ab``: the same, but sticky per ``X-Client-Id`` header (a client always sees one model);
- ``shadow``: the champion answers; the challenger scores a copy, logged, never returned.

A background task follows the aliases and the rollout; a new version is loaded completely
before one atomic swap of the serving state, so a swap never fails a request. Concurrent
requests to one model are grouped into a single ONNX Runtime call (:class:`Batcher`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import numpy as np
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from .config import Settings
from .images import ImageError, load_rgb
from .jsonl import append_jsonl
from .metrics import BATCH_BUCKETS, LATENCY_BUCKETS, Metrics
from .monitor import TrafficLog
from .predict import OnnxPredictor, predictions_from
from .preprocess import to_input
from .registry import ALIASES, Registry, RegistryError, now_utc

log = logging.getLogger(__name__)
MAX_IMAGES_PER_REQUEST = 64
SYNC_INTERVAL_S = 0.5


class InputError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Batcher:
    """Collects concurrent requests for one model and runs them as one batch.

    It takes whatever is queued when the model becomes free (up to ``max_batch`` images),
    and waits up to ``max_wait_s`` for more only if that is set: under load batches fill by
    themselves, and a lone request is not delayed.
    """

    def __init__(self, predictor: OnnxPredictor, max_batch: int, max_wait_s: float,
                 metrics: Metrics):
        self.predictor, self.max_batch, self.max_wait_s = predictor, max_batch, max_wait_s
        self.metrics = metrics
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None

    async def run(self, x: np.ndarray) -> np.ndarray:
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():  # first use, or woken after retirement
            self.task = asyncio.create_task(self._loop())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((x, future))
        return await future

    def retire(self) -> None:
        """Stop once the queued requests are answered (the model was swapped out)."""
        if self.task is not None and not self.task.done():  # called from the sync thread
            self.loop.call_soon_threadsafe(self.queue.put_nowait, None)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            if first is None:
                if self.queue.empty():
                    return  # a late request restarts the loop (see run)
                continue
            batch, rows = [first], len(first[0])
            deadline = loop.time() + self.max_wait_s
            while rows < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    if loop.time() >= deadline:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), deadline - loop.time())
                    except asyncio.TimeoutError:
                        break
                if item is None:  # retired: finish this batch, then stop when drained
                    self.queue.put_nowait(None)
                    break
                batch.append(item)
                rows += len(item[0])
            await self._run_batch(batch, rows)

    async def _run_batch(self, batch: list, rows: int) -> None:
        session = self.predictor.session
        inputs = np.concatenate([x for x, _ in batch])
        try:
            probs = await asyncio.to_thread(session.run, None, {self.predictor.input_name: inputs})
        except Exception as err:  # the runtime failed: every waiting request learns why
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        self.metrics.observe("batch_size", rows)
        start = 0
        for x, future in batch:
            if not future.done():
                future.set_result(probs[0][start:start + len(x)])
            start += len(x)


@dataclass
class Slot:
    """One loaded model version and its batcher."""

    predictor: OnnxPredictor
    batcher: Batcher

    @property
    def version(self) -> str:
        return self.predictor.version


@dataclass(frozen=True)
class ServingState:
    """What serves right now; replaced whole, never edited, so a request sees one state."""

    slots: dict[str, Slot] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    rollout: dict = field(default_factory=lambda: {"mode": "off", "percent": 0})

    def slot(self, alias: str) -> Slot | None:
        return self.slots.get(self.aliases.get(alias, ""))

    def route(self, client_id: str | None) -> tuple[Slot, Slot | None]:
        """(the slot that answers, the slot that scores a shadow copy or None)."""
        champion, challenger = self.slot("champion"), self.slot("challenger")
        mode, percent = self.rollout.get("mode", "off"), float(self.rollout.get("percent", 0))
        if challenger is None or challenger is champion or mode == "off":
            return champion, None
        if mode == "shadow":
            return champion, challenger
        if mode == "ab":
            if not client_id:
                return champion, None
            bucket = int(hashlib.sha256(client_id.encode()).hexdigest()[:8], 16) % 10000 / 100
            return (challenger if bucket < percent else champion), None
        return (challenger if random.random() * 100 < percent else champion), None


class ModelPool:
    """Keeps the loaded models in step with the registry's aliases and rollout."""

    def __init__(self, registry: Registry, settings: Settings, metrics: Metrics):
        self.registry, self.settings, self.metrics = registry, settings, metrics
        self.state = ServingState()
        self._lock = threading.Lock()

    def sync(self) -> ServingState:
        """Load what the aliases name, then publish the new state in one assignment."""
        with self._lock:
            aliases = {a: v for a, v in self.registry.aliases().items() if a in ALIASES}
            rollout = self.registry.rollout()
            old = self.state
            if aliases == old.aliases and rollout == old.rollout:
                return old
            slots = {}
            for version in set(aliases.values()):
                slots[version] = old.slots.get(version) or self._load(version)
            slots = {v: s for v, s in slots.items() if s is not None}
            aliases = {a: v for a, v in aliases.items() if v in slots}
            self.state = ServingState(slots, aliases, rollout)
            for version, slot in old.slots.items():
                if version not in slots:
                    slot.batcher.retire()
            return self.state

    def _load(self, version: str) -> Slot | None:
        try:
            predictor = OnnxPredictor(self.registry.path(version))
        except Exception as err:  # keep serving what we have
            log.error("could not load model %s: %s", version, err)
            return None
        return Slot(predictor, Batcher(predictor, self.settings.max_batch_size,
                                       self.settings.max_wait_ms / 1000, self.metrics))


def _metrics() -> Metrics:
    m = Metrics()
    m.counter("requests_total", "Prediction requests by HTTP status.")
    m.counter("errors_total", "Failed prediction requests by reason.")
    m.counter("predictions_total", "Images classified, by predicted label and model version.")
    m.counter("shadow_total", "Shadow comparisons: does the challenger agree with the champion?")
    m.histogram("request_latency_seconds", "Time to answer a prediction request.", LATENCY_BUCKETS)
    m.histogram("batch_size", "Images per ONNX Runtime call.", BATCH_BUCKETS)
    m.histogram("confidence", "Top-class probability, by model version.",
                (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0))
    return m


class PromoteBody(BaseModel):
    version: str
    alias: str = "champion"
    reason: str = ""


class RollbackBody(BaseModel):
    alias: str = "champion"
    reason: str = ""


class RolloutBody(BaseModel):
    mode: str
    percent: float = 0
    reason: str = ""


def create_service(settings: Settings) -> FastAPI:
    registry = Registry(settings.exports_dir)
    metrics = _metrics()
    pool = ModelPool(registry, settings, metrics)
    shadow_log = settings.log_dir / "shadow.jsonl"  # a log, not a store: no fsync per line
    traffic = TrafficLog(settings.log_dir, "service", settings.traffic_keep_days)

    async def follow_registry() -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL_S)
            try:
                await asyncio.to_thread(pool.sync)
            except Exception as err:  # a registry mid-edit by hand: try again next time
                log.warning("registry sync failed: %s", err)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool.sync()
        if not settings.admin_token:
            log.warning("WASTESORT_ADMIN_TOKEN is not set: the admin API is off")
        task = asyncio.create_task(follow_registry())
        yield
        task.cancel()

    app = FastAPI(title="wastesort model service", version="1", lifespan=lifespan,
                  description="Waste photo classification. See README, 'Model as a service'.")
    app.state.pool, app.state.metrics = pool, metrics

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        champion = pool.state.slot("champion")
        if champion is None:
            return JSONResponse({"ready": False, "reason": "no champion loaded"}, 503)
        return JSONResponse({"ready": True, "champion": champion.version})

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics_text() -> str:
        return metrics.render()

    @app.get("/v1/models")
    def models() -> dict:
        state = pool.state
        champion = state.slot("champion")
        return {"aliases": state.aliases, "rollout": state.rollout,
                "loaded": sorted(state.slots), "versions": registry.versions(),
                "labels": champion.predictor.labels if champion else []}

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        request_id = uuid.uuid4().hex[:16]
        start = time.perf_counter()
        try:
            images = await read_images(request, settings.max_upload_mb)
            state = pool.state
            serving, shadow = state.route(request.headers.get("x-client-id"))
            if serving is None:
                raise InputError(503, "No model is loaded yet; try again shortly.")
            x = await asyncio.to_thread(decode, images, serving.predictor.card["preprocessing"])
            probs = await serving.batcher.run(x)
        except InputError as err:
            metrics.inc("requests_total", status=str(err.status))
            metrics.inc("errors_total", reason="bad_input" if err.status < 500 else "unavailable")
            return JSONResponse({"error": str(err), "request_id": request_id}, err.status)
        predictions = predictions_from(probs, serving.predictor.labels, serving.version)
        for p in predictions:
            metrics.inc("predictions_total", label=p.label, model_version=p.model_version)
            metrics.observe("confidence", p.confidence, model_version=p.model_version)
        traffic.record(predictions)
        if shadow is not None:
            asyncio.create_task(score_shadow(shadow, images, predictions, request_id))
        metrics.inc("requests_total", status="200")
        metrics.observe("request_latency_seconds", time.perf_counter() - start)
        return JSONResponse({"request_id": request_id,
                             "predictions": [p.to_dict() for p in predictions]})

    async def score_shadow(slot: Slot, images: list[tuple[str, bytes]], served: list,
                           request_id: str) -> None:
        try:
            x = await asyncio.to_thread(decode, images, slot.predictor.card["preprocessing"])
            probs = await slot.batcher.run(x)
        except Exception as err:
            log.warning("shadow scoring failed: %s", err)
            return
        shadowed = predictions_from(probs, slot.predictor.labels, slot.version)
        for a, b in zip(served, shadowed):
            metrics.inc("shadow_total", agree=str(a.label == b.label).lower())
        shadow_log.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(shadow_log, {
            "time": now_utc(), "request_id": request_id, "champion": served[0].model_version,
            "challenger": slot.version, "champion_labels": [p.label for p in served],
            "challenger_labels": [p.label for p in shadowed],
            "challenger_confidences": [round(p.confidence, 4) for p in shadowed]}, fsync=False)

    _add_ml_backend_routes(app, pool, settings)
    if settings.admin_token:
        _add_admin_routes(app, registry, pool, settings.admin_token)
    return app


def _add_ml_backend_routes(app: FastAPI, pool: ModelPool, settings: Settings) -> None:
    """Label Studio's ML backend protocol, so reviewers see the champion's guess.

    Label Studio calls ``/setup`` with its own address and a token, then ``/predict`` with
    tasks whose ``data.image`` is a path on that server; the images are fetched from there.
    """
    studio = {"url": settings.labelstudio_url, "token": settings.labelstudio_token}

    @app.post("/setup", tags=["label studio"])
    async def setup(request: Request) -> dict:
        body = await request.json()
        if body.get("hostname"):
            studio["url"] = body["hostname"]
        if body.get("access_token"):
            studio["token"] = body["access_token"]
        champion = pool.state.slot("champion")
        return {"model_version": champion.version if champion else "none"}

    @app.post("/predict", tags=["label studio"])
    async def predict_tasks(request: Request) -> dict:
        tasks = (await request.json()).get("tasks", [])
        champion = pool.state.slot("champion")
        if champion is None:
            raise HTTPException(503, "no champion loaded")
        results = []
        async with httpx.AsyncClient(base_url=studio["url"], timeout=10,
                                     headers={"Authorization": f"Token {studio['token']}"}) as http:
            for task in tasks:
                try:
                    url = task["data"]["image"]
                    image = (await http.get(url)).raise_for_status().content
                    x = await asyncio.to_thread(decode, [(url, image)],
                                                champion.predictor.card["preprocessing"])
                    p = predictions_from(await champion.batcher.run(x),
                                         champion.predictor.labels, champion.version)[0]
                except (KeyError, httpx.HTTPError, InputError) as err:
                    log.warning("cannot pre-annotate task %s: %s", task.get("id"), err)
                    results.append({"result": [], "score": 0, "model_version": champion.version})
                    continue
                results.append({"model_version": p.model_version, "score": p.confidence,
                                "result": [{"from_name": "label", "to_name": "image",
                                            "type": "choices", "value": {"choices": [p.label]}}]})
        return {"results": results}

    @app.post("/webhook", tags=["label studio"])
    async def webhook(request: Request) -> dict:
        event = await request.json()
        log.info("label studio event %s", event.get("action"))
        return {"status": "ok"}


def _add_admin_routes(app: FastAPI, registry: Registry, pool: ModelPool, token: str) -> None:
    def admin(authorization: str = Header("")) -> None:
        if not hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "admin token missing or wrong",
                                headers={"WWW-Authenticate": "Bearer"})

    async def changed(change) -> dict:
        try:
            await asyncio.to_thread(change)
        except RegistryError as err:
            raise HTTPException(409, str(err)) from err
        state = await asyncio.to_thread(pool.sync)
        return {"aliases": state.aliases, "rollout": state.rollout}

    @app.post("/v1/admin/promote", dependencies=[Depends(admin)])
    async def promote(body: PromoteBody) -> dict:
        return await changed(lambda: registry.promote(body.version, body.alias, body.reason))

    @app.post("/v1/admin/rollback", dependencies=[Depends(admin)])
    async def rollback(body: RollbackBody) -> dict:
        return await changed(lambda: registry.rollback(body.alias, body.reason))

    @app.post("/v1/admin/rollout", dependencies=[Depends(admin)])
    async def rollout(body: RolloutBody) -> dict:
        return await changed(lambda: registry.set_rollout(body.mode, body.percent, body.reason))


async def read_images(request: Request, max_mb: float) -> list[tuple[str, bytes]]:
    """(name, bytes) per image from a multipart form (field ``files``) or JSON base64."""
    limit = int(max_mb * 1024 * 1024)
    length = int(request.headers.get("content-length") or 0)
    if length > limit * MAX_IMAGES_PER_REQUEST:
        raise InputError(413, f"The request is too large ({length / 1e6:.0f} MB).")
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_IMAGES_PER_REQUEST)
        images = [(f.filename or f"image{i}", await f.read())
                  for i, f in enumerate(form.getlist("files")) if hasattr(f, "read")]
    elif kind.startswith("application/json"):
        try:
            payload = json.loads(await request.body())
            images = [(f"image{i}", _b64(s)) for i, s in enumerate(payload["images"])]
        except (ValueError, KeyError, TypeError, binascii.Error) as err:
            raise InputError(400, 'Send JSON like {"images": ["<base64>", ...]}.') from err
    else:
        raise InputError(415, "Send images as multipart/form-data (field 'files') or JSON "
                              "{'images': [base64, ...]}.")
    if not images:
        raise InputError(400, "The request holds no image.")
    if len(images) > MAX_IMAGES_PER_REQUEST:
        raise InputError(413, f"At most {MAX_IMAGES_PER_REQUEST} images per request.")
    for name, data in images:
        if len(data) > limit:
            raise InputError(413, f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_mb:g} MB.")
    return images


def _b64(text: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    return base64.b64decode(text, validate=True)


def decode(images: list[tuple[str, bytes]], spec: dict) -> np.ndarray:
    pictures = []
    for name, data in images:
        try:
            pictures.append(load_rgb(data))
        except ImageError as err:
            raise InputError(422, f"{name}: {err}") from err
    return to_input(pictures, spec)


def run(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(create_service(settings), host=host, port=port, log_level="warning")
