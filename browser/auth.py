"""Who is looking: every page needs an analyst identity outside local mode.

Production sits behind the Gateway with IAP, which sets ``X-Goog-Authenticated-User-Email``
(``accounts.google.com:alice@example.com``); scripts may instead send
``Authorization: Bearer <token>`` with a token from the settings' Secret.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from browser.settings import BrowserMode, BrowserSettings

IAP_PREFIX = "accounts.google.com:"


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
