"""Typed settings of the call browser, from the environment (pydantic-settings): ``BrowserSettings``.

``local`` mode needs no sign-in; ``production`` refuses every request that carries
neither an IAP identity nor one of the configured bearer tokens, and refuses to start
when neither way of signing in is configured.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_INDEX_FILENAME = "call_index.db"  # the postcall pipeline writes it there (CallIndexResource)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class BrowserMode(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


class BrowserSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLCENTER_BROWSER_", extra="ignore", populate_by_name=True)

    mode: BrowserMode = BrowserMode.LOCAL
    host: str = "127.0.0.1"
    port: int = Field(3001, ge=1, le=65535)

    # Where the call index lives: a file path (or sqlite:///path) for the embedded engine, a
    # postgresql:// URL in production (the pipeline's CALLCENTER_CALL_INDEX_DSN); unset, the
    # embedded index the pipeline writes under CALLCENTER_DATA_DIR.
    index_url: str | None = Field(
        None, validation_alias=AliasChoices("CALLCENTER_BROWSER_INDEX_URL", "CALLCENTER_CALL_INDEX_DSN")
    )
    data_dir: Path = Field(Path(".local/data"), validation_alias="CALLCENTER_DATA_DIR")

    # The recordings bucket (same env vars as the Dagster resource `recordings_bucket`).
    recordings_bucket: str | None = Field(None, validation_alias="CALLCENTER_RECORDINGS_BUCKET")
    storage_emulator_host: str | None = Field(None, validation_alias="STORAGE_EMULATOR_HOST")
    gcp_project: str | None = Field(None, validation_alias="GOOGLE_CLOUD_PROJECT")
    signed_url_minutes: int = Field(15, ge=1, le=7 * 24 * 60)

    # Production sign-in: IAP and/or bearer tokens for scripts. With ``iap_audience`` set, the
    # analyst is whoever IAP's signed X-Goog-IAP-JWT-Assertion names (checked against Google's
    # IAP keys); ``trust_iap_header`` alone takes the plain email header on trust, which is only
    # safe where nothing but the IAP-fronted load balancer reaches the pod. Off by default: a
    # token-only deployment must not let a forged header in.
    trust_iap_header: bool = False
    iap_user_header: str = "X-Goog-Authenticated-User-Email"
    iap_audience: str | None = Field(
        None, description="/projects/<project number>/global/backendServices/<backend service id>"
    )
    api_tokens: SecretStr | None = Field(
        None, description="comma-separated bearer tokens accepted in production (from a Kubernetes Secret)"
    )

    page_size: int = Field(50, ge=1, le=500)
    csv_export_max_rows: int = Field(100_000, ge=1)
    # Every call page view is logged; also appended here as JSON lines when set.
    audit_log_path: Path | None = None

    @model_validator(mode="after")
    def _local_mode_stays_on_loopback(self) -> BrowserSettings:
        # Local mode has no sign-in: serving it beyond this machine would publish every call.
        if self.mode is BrowserMode.LOCAL and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"local mode has no sign-in and serves only on loopback, not {self.host!r}: "
                "set CALLCENTER_BROWSER_HOST=127.0.0.1, or CALLCENTER_BROWSER_MODE=production"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_sign_in(self) -> BrowserSettings:
        if self.mode is BrowserMode.PRODUCTION and not (self.trust_iap_header or self.iap_audience or self.tokens()):
            raise ValueError(
                "production mode needs a way to sign in: set CALLCENTER_BROWSER_API_TOKENS, "
                "CALLCENTER_BROWSER_IAP_AUDIENCE (verifies IAP's signed assertion) "
                "or CALLCENTER_BROWSER_TRUST_IAP_HEADER=true (only where just IAP reaches the pod)"
            )
        return self

    def call_index_url(self) -> str:
        return self.index_url or str(self.data_dir / EMBEDDED_INDEX_FILENAME)

    def tokens(self) -> list[str]:
        if self.api_tokens is None:
            return []
        return [t.strip() for t in self.api_tokens.get_secret_value().split(",") if t.strip()]
