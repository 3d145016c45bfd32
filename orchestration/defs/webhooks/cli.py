"""Operator commands for outbound webhooks: the delivery log, replay, a manual delivery round.

    python -m orchestration.defs.webhooks.cli list [--status pending|delivered|failed] [--limit N]
    python -m orchestration.defs.webhooks.cli show MESSAGE_ID       # body and every attempt
    python -m orchestration.defs.webhooks.cli replay MESSAGE_ID [--endpoint NAME ...]
    python -m orchestration.defs.webhooks.cli deliver               # one round (the service loops this)

Ledger: CALLCENTER_DIALING_DSN (PostgreSQL) or CALLCENTER_DATA_DIR (SQLite), as the dialing CLI.
Endpoints: CALLCENTER_WEBHOOK_ENDPOINTS (docs/webhooks.md). A replay sends the message's own
webhook-id and body with a fresh timestamp and signature, so subscribers deduplicate it.
"""

from __future__ import annotations

import argparse
import os
import sys

from orchestration.defs.dialing.cli import _store
from orchestration.defs.webhooks.outbox import (
    ENDPOINTS_ENV,
    DeliveryStatus,
    EndpointsConfigError,
    Outbox,
    parse_endpoints,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="webhooks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list")
    ls.add_argument("--status", choices=[s.value for s in DeliveryStatus])
    ls.add_argument("--limit", type=int, default=50)
    show = sub.add_parser("show")
    show.add_argument("message_id")
    replay = sub.add_parser("replay")
    replay.add_argument("message_id")
    replay.add_argument("--endpoint", action="append", help="endpoint name (default: every endpoint it went to)")
    sub.add_parser("deliver")
    args = ap.parse_args(argv)

    try:
        endpoints = parse_endpoints(os.environ.get(ENDPOINTS_ENV))
    except EndpointsConfigError as e:
        print(e, file=sys.stderr)
        return 2
    store = _store()
    try:
        outbox = Outbox(store, endpoints)
        if args.cmd == "list":
            status = DeliveryStatus(args.status) if args.status else None
            for d in outbox.deliveries(status, limit=args.limit):
                print(
                    f"{d.message_id} {d.event_type} -> {d.endpoint}: {d.status.value}, {d.attempts} attempts"
                    + (f", last {d.last_error or d.last_status_code}" if d.attempts else "")
                    + (f", next {d.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}" if d.status is DeliveryStatus.PENDING else "")
                )
        elif args.cmd == "show":
            message = outbox.message(args.message_id)
            if message is None:
                print(f"no webhook message {args.message_id!r} in the delivery log", file=sys.stderr)
                return 2
            print(f"{message.message_id} {message.event_type} recorded {message.created_at:%Y-%m-%dT%H:%M:%SZ}")
            print(message.body)
            for d in outbox.deliveries(message_id=message.message_id):
                print(f"  -> {d.endpoint}: {d.status.value}")
            for a in outbox.attempt_log(message.message_id):
                print(
                    f"  attempt {a.attempt} to {a.endpoint} at {a.at:%Y-%m-%dT%H:%M:%SZ}: "
                    f"{a.error or a.status_code} ({a.duration_ms:.0f} ms){' replay' if a.replay else ''}"
                )
        elif args.cmd == "replay":
            try:
                logs = outbox.replay(args.message_id, args.endpoint)
            except KeyError as e:
                print(e.args[0], file=sys.stderr)
                return 2
            for a in logs:
                print(f"{a.message_id} -> {a.endpoint}: " + ("delivered" if a.error is None else f"failed ({a.error})"))
            return 0 if all(a.error is None for a in logs) else 1
        else:
            result = outbox.deliver_due()
            print(f"delivered {len(result.delivered)}, retrying {len(result.retrying)}, failed {len(result.failed)}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
