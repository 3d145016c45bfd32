"""The webhook service: LiveKit's webhooks in, our signed webhooks out.

    python -m orchestration.defs.webhooks.service          # listens on CALLCENTER_WEBHOOKS_HOST:PORT

``POST /livekit`` takes livekit-server's webhooks (``webhook.urls`` in its config), verified with
``livekit.api.WebhookReceiver`` against the same API key and secret; anything unsigned, signed
with another key or with a body that does not match its signature is refused with 401. A
background loop fans out and delivers the outbox every ``CALLCENTER_WEBHOOKS_POLL_S`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from livekit import api
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestration.defs.dialing.ledger import DialStore, open_store
from orchestration.defs.dialing.resources import LEDGER_FILENAME
from orchestration.defs.webhooks import livekit_events
from orchestration.defs.webhooks.outbox import DEFAULT_BACKOFF, Outbox, parse_endpoints

log = logging.getLogger("webhooks")


class WebhookServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLCENTER_WEBHOOKS_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(8090, ge=1, le=65535)
    poll_s: float = Field(1.0, gt=0)
    # LiveKit signs its webhooks with this key pair (the server's webhook.api_key): no default.
    livekit_api_key: str = Field(validation_alias="LIVEKIT_API_KEY", min_length=1)
    livekit_api_secret: SecretStr = Field(validation_alias="LIVEKIT_API_SECRET")
    # The ledger: PostgreSQL on GKE, SQLite under the data dir locally (as the dialing CLI).
    dialing_dsn: SecretStr | None = Field(None, validation_alias="CALLCENTER_DIALING_DSN")
    data_dir: Path | None = Field(None, validation_alias="CALLCENTER_DATA_DIR")
    endpoints: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("CALLCENTER_WEBHOOK_ENDPOINTS", "CALLCENTER_WEBHOOKS_ENDPOINTS")
    )

    def open_store(self) -> DialStore:
        dsn = self.dialing_dsn.get_secret_value() if self.dialing_dsn else None
        return open_store(self.data_dir / LEDGER_FILENAME if self.data_dir else None, dsn)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "webhook_error", "param": None, "code": status}}, status)


def create_app(
    store: DialStore,
    receiver: api.WebhookReceiver,
    outbox: Outbox | None,
    poll_s: float = 1.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    async def deliver_forever() -> None:
        assert outbox is not None
        while True:
            try:
                result = await asyncio.to_thread(outbox.deliver_due)
                if result.failed:
                    log.warning("webhook deliveries given up: %s", ", ".join(result.failed))
            except Exception:  # a database hiccup must not end the loop
                log.exception("webhook delivery round failed; retrying")
            await asyncio.sleep(poll_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(deliver_forever()) if outbox is not None and outbox.endpoints else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="call-center webhooks", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/livekit")
    async def livekit_webhook(request: Request) -> JSONResponse:
        body = (await request.body()).decode("utf-8", errors="replace")
        token = request.headers.get("authorization", "")
        token = token.removeprefix("Bearer ").strip()
        if not token:
            return _error(401, "missing Authorization: LiveKit signs its webhooks with a JWT")
        try:
            event = receiver.receive(body, token)
        except Exception as e:  # the SDK raises bare Exception / jwt errors for every failed check
            log.warning("refused a LiveKit webhook: %s", type(e).__name__)
            return _error(401, "webhook signature or body hash does not verify")
        handled = await asyncio.to_thread(livekit_events.handle, store, event, clock())
        log.info(
            "livekit %s %s%s%s", handled.event, handled.call_id or "-",
            " freed a call slot" if handled.freed_slot else "", f" -> {handled.message_id}" if handled.message_id else "",
        )  # fmt: skip
        return JSONResponse({"event": handled.event, "call_id": handled.call_id, "freed_slot": handled.freed_slot})

    return app


def build_app(settings: WebhookServiceSettings) -> FastAPI:
    store = settings.open_store()
    receiver = api.WebhookReceiver(
        api.TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
    )
    endpoints = parse_endpoints(settings.endpoints.get_secret_value())
    outbox = Outbox(store, endpoints, backoff=DEFAULT_BACKOFF)
    if not endpoints:
        log.warning("no webhook endpoints configured (CALLCENTER_WEBHOOK_ENDPOINTS): events are kept, not sent")
    return create_app(store, receiver, outbox, poll_s=settings.poll_s)


def main() -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = WebhookServiceSettings()  # type: ignore[call-arg]  (from the environment)
    uvicorn.run(build_app(settings), host=settings.host, port=settings.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
