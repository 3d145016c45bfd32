"""Sign-in outside local mode: IAP identity or a bearer token from the settings; nothing else gets in."""

from __future__ import annotations

import html
import json

import pytest
from pydantic import ValidationError

from browser.core.config import BrowserSettings

TOKEN = "s3cret-analyst-token"


@pytest.fixture
def production(make_client, tmp_path):
    """Behind IAP, trusting its email header (only the load balancer reaches the pod), and tokens."""
    audit = tmp_path / "audit.jsonl"
    client = make_client(
        mode="production", api_tokens=f"other-token, {TOKEN}", audit_log_path=audit, trust_iap_header=True
    )
    return client, audit


@pytest.mark.parametrize(
    "path",
    ["/calls", "/calls.csv", "/search?q=appointment", "/dashboard", "/calls/call-01a1f82f-1e80-73a0-bd96-3de95ed34fe5"],
)
def test_production_refuses_anonymous_requests(production, path):
    client, _ = production
    r = client.get(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "sign in" in r.text.lower()


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Authorization": "Bearer wrong"}, "not one this browser accepts"),
        ({"Authorization": f"Basic {TOKEN}"}, "must be 'Bearer <token>'"),
        ({"X-Goog-Authenticated-User-Email": "accounts.google.com:no-at-sign"}, "does not hold an email address"),
    ],
)
def test_production_refuses_bad_credentials(production, headers, why):
    client, _ = production
    r = client.get("/calls", headers=headers)
    assert r.status_code == 401 and why in html.unescape(r.text)


def test_iap_identity_is_shown_and_audited(production, calls):
    client, audit = production
    record, _ = calls[0]
    r = client.get(
        f"/calls/{record.call_id}", headers={"X-Goog-Authenticated-User-Email": "accounts.google.com:ana@example.com"}
    )
    assert r.status_code == 200 and "ana@example.com" in r.text
    entry = json.loads(audit.read_text().splitlines()[-1])
    assert (entry["analyst"], entry["via"], entry["call_id"]) == ("ana@example.com", "iap", record.call_id)


def test_bearer_token_from_settings_gets_in(production):
    client, _ = production
    assert client.get("/calls", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/calls.csv", headers={"Authorization": "Bearer other-token"}).status_code == 200


def test_iap_header_is_ignored_when_not_behind_iap(make_client):
    client = make_client(mode="production", api_tokens=TOKEN, trust_iap_header=False)
    r = client.get("/calls", headers={"X-Goog-Authenticated-User-Email": "accounts.google.com:ana@example.com"})
    assert r.status_code == 401


def test_health_probe_needs_no_sign_in(production):
    client, _ = production
    assert client.get("/healthz").text == "ok"


def test_production_without_any_sign_in_method_refuses_to_start():
    with pytest.raises(ValidationError, match="CALLCENTER_BROWSER_API_TOKENS"):
        BrowserSettings(mode="production", trust_iap_header=False)


def test_local_mode_refuses_to_serve_beyond_loopback():
    with pytest.raises(ValidationError, match="local mode has no sign-in"):
        BrowserSettings(mode="local", host="0.0.0.0")
    assert BrowserSettings(mode="production", host="0.0.0.0", api_tokens=TOKEN).host == "0.0.0.0"


def test_a_token_only_deployment_ignores_a_forged_iap_header(make_client, calls):
    """The header was trusted by default: any caller sending it got in under any email."""
    client = make_client(mode="production", api_tokens=TOKEN)
    record, _ = calls[0]
    forged = {"X-Goog-Authenticated-User-Email": "accounts.google.com:ceo@example.com"}
    assert client.get("/calls.csv", headers=forged).status_code == 401
    assert client.get(f"/calls/{record.call_id}", headers=forged).status_code == 401


AUDIENCE = "/projects/123456789/global/backendServices/987654321"


@pytest.fixture
def iap_signer(monkeypatch):
    """An ES256 key standing in for IAP's, served as Google's IAP key set is (kid -> PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from google.auth import crypt

    import browser.auth

    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

    class KeySet:
        status = 200
        data = json.dumps({"test-key": public_pem}).encode()

    keys = browser.auth.CachedKeys()
    monkeypatch.setattr(keys, "fetch", lambda url: KeySet())
    monkeypatch.setattr(browser.auth, "IAP_KEYS", keys)
    return crypt.ES256Signer.from_string(private_pem, key_id="test-key")


def iap_assertion(signer, **claims) -> str:
    import time

    from google.auth import jwt

    now = int(time.time())
    payload = {
        "iss": "https://cloud.google.com/iap",
        "aud": AUDIENCE,
        "email": "ana@example.com",
        "sub": "1",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(signer, payload).decode()


def test_the_signed_iap_assertion_names_the_analyst(make_client, calls, iap_signer):
    client = make_client(mode="production", iap_audience=AUDIENCE)
    record, _ = calls[0]
    ok = client.get(f"/calls/{record.call_id}", headers={"X-Goog-IAP-JWT-Assertion": iap_assertion(iap_signer)})
    assert ok.status_code == 200 and "ana@example.com" in ok.text
    # The plain header alone, another backend's assertion, or a stale one: not signed in.
    forged = {"X-Goog-Authenticated-User-Email": "accounts.google.com:ceo@example.com"}
    assert client.get("/calls", headers=forged).status_code == 401
    other = iap_assertion(iap_signer, aud="/projects/1/global/backendServices/2")
    assert client.get("/calls", headers={"X-Goog-IAP-JWT-Assertion": other}).status_code == 401
    stale = iap_assertion(iap_signer, iat=1, exp=2)
    assert client.get("/calls", headers={"X-Goog-IAP-JWT-Assertion": stale}).status_code == 401
    not_iap = iap_assertion(iap_signer, iss="https://accounts.google.com")
    assert client.get("/calls", headers={"X-Goog-IAP-JWT-Assertion": not_iap}).status_code == 401
