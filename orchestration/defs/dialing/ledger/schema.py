"""The ledger's tables. Both engines run this DDL as written (times are epoch seconds in
DOUBLE PRECISION, booleans are BOOLEAN); what differs per engine is in ``sqlite.py`` and
``postgres.py``. The webhook outbox's tables live beside these, created by
``orchestration/defs/webhooks/outbox.py`` over the same connection."""

from __future__ import annotations

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS campaign_controls (
        campaign_id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT, updated_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS campaign_contacts (
        campaign_id TEXT NOT NULL, contact_id TEXT NOT NULL, position INTEGER NOT NULL,
        phone_number TEXT NOT NULL, name TEXT, time_zones TEXT NOT NULL, zone_source TEXT NOT NULL,
        fields TEXT NOT NULL, PRIMARY KEY (campaign_id, contact_id))""",
    """CREATE TABLE IF NOT EXISTS do_not_call (
        phone_number TEXT NOT NULL, source TEXT NOT NULL, campaign_id TEXT, call_id TEXT,
        added_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (phone_number, source))""",
    """CREATE TABLE IF NOT EXISTS dial_attempts (
        attempt_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
        campaign_id TEXT NOT NULL, contact_id TEXT NOT NULL, attempt_number INTEGER NOT NULL,
        phone_number TEXT NOT NULL, call_id TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
        reserved_at DOUBLE PRECISION NOT NULL, dispatched_at DOUBLE PRECISION, closed_at DOUBLE PRECISION,
        outcome TEXT, sip_status_code INTEGER, dispatch_id TEXT, abandoned BOOLEAN, note TEXT)""",
    "CREATE INDEX IF NOT EXISTS campaign_contacts_order ON campaign_contacts (campaign_id, position)",
    "CREATE INDEX IF NOT EXISTS dial_attempts_campaign ON dial_attempts (campaign_id, contact_id)",
    "CREATE INDEX IF NOT EXISTS dial_attempts_status ON dial_attempts (status)",
    "CREATE INDEX IF NOT EXISTS dial_attempts_phone ON dial_attempts (phone_number, status)",
    """CREATE TABLE IF NOT EXISTS dialing_leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)""",
    # The last import of each do-not-call registry file: a campaign whose registry never
    # imported, or whose last import failed, dials nobody.
    """CREATE TABLE IF NOT EXISTS do_not_call_imports (
        source TEXT PRIMARY KEY, status TEXT NOT NULL, numbers INTEGER NOT NULL, digest TEXT, detail TEXT,
        at DOUBLE PRECISION NOT NULL)""",
    # Watermarks of sweeps over the bucket (e.g. inbound calls' do-not-call requests).
    """CREATE TABLE IF NOT EXISTS dialing_marks (name TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL)""",
]
