"""Who is looking: every page needs an analyst identity outside local mode.

Production sits behind the Gateway with IAP. IAP signs ``X-Goog-IAP-JWT-Assertion`` (ES256)
for the backend service: with ``iap_audience`` set, that assertion is verified against
Google's IAP keys and names the analyst. IAP also sets ``X-Goog-Authenticated-User-Email``
(``accounts.google.com:alice@example.com``), taken on trust only with ``trust_iap_header``.
Scripts may instead send ``Authorization: Bearer <token>`` with a token from the settings' Secret.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass

import google.auth.transport.requests
from fastapi import Request
from google.auth import exceptions
from google.oauth2 import id_token

from browser.core.config import BrowserMode, BrowserSettings

IAP_PREFIX = "accounts.google.com:"
IAP_ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"
IAP_KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"
IAP_ISSUER = "https://cloud.google.com/iap"


class CachedKeys:
    """Google's IAP public keys, fetched once an hour (a ``google.auth`` transport request:
    ``verify_token`` asks it for the key set on every sign-in)."""

    def __init__(self, ttl_s: float = 3600.0) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, object] | None = None

    def fetch(self, url: str):  # noqa: ANN201 - a google.auth transport Response
        return google.auth.transport.requests.Request()(url, method="GET")

    def __call__(self, url: str, method: str = "GET", **_: object):  # noqa: ANN204
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.ttl_s:
                response = self.fetch(url)
                if response.status != 200:
                    return response  # not cached: the next sign-in tries again
                self._cached = (time.monotonic(), response)
            return self._cached[1]


IAP_KEYS = CachedKeys()


@dataclass(frozen=True)
class Analyst:
    email: str
    via: str  # "local" | "iap" | "token"


class NotSignedIn(Exception):
    """Raised by :func:`current_analyst`; rendered as 401 with what to send."""


def identify(request: Request, settings: BrowserSettings) -> Analyst:
    if settings.mode is BrowserMode.LOCAL:
        return Analyst(email="local-analyst", via="local")

    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotSignedIn("the Authorization header must be 'Bearer <token>'")
        # Compare against every token without short-circuiting, so timing says nothing.
        matched = [
            i for i, known in enumerate(settings.tokens()) if hmac.compare_digest(token.encode(), known.encode())
        ]
        if not matched:
            raise NotSignedIn("the bearer token is not one this browser accepts")
        return Analyst(email=f"token-{matched[0] + 1}", via="token")

    if settings.iap_audience:
        assertion = request.headers.get(IAP_ASSERTION_HEADER, "")
        if not assertion:
            raise NotSignedIn("sign in through the Gateway (IAP) or send 'Authorization: Bearer <token>'")
        try:
            claims = id_token.verify_token(assertion, IAP_KEYS, audience=settings.iap_audience, certs_url=IAP_KEYS_URL)
        except (ValueError, exceptions.GoogleAuthError) as exc:
            raise NotSignedIn(f"the IAP assertion was not accepted ({type(exc).__name__})") from None
        if claims.get("iss") != IAP_ISSUER or "@" not in str(claims.get("email", "")):
            raise NotSignedIn("the IAP assertion is not IAP's, or names no email address")
        return Analyst(email=claims["email"], via="iap")

    if settings.trust_iap_header:
        user = request.headers.get(settings.iap_user_header, "").strip()
        if user:
            email = user.removeprefix(IAP_PREFIX)
            if "@" not in email:
                raise NotSignedIn(f"{settings.iap_user_header} does not hold an email address")
            return Analyst(email=email, via="iap")

    raise NotSignedIn("sign in through the Gateway (IAP) or send 'Authorization: Bearer <token>'")


def current_analyst(request: Request) -> Analyst:
    """FastAPI dependency: the signed-in analyst (stored on the request for the audit log)."""
    analyst = identify(request, request.app.state.settings)
    request.state.analyst = analyst
    return analyst
