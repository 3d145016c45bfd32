"""Operator commands for campaigns, without the Dagster UI.

    python -m orchestration.defs.dialing.cli load                 # validate + load lists and DNC files
    python -m orchestration.defs.dialing.cli dry-run [-c ID] [--at 2026-11-26T14:00:00Z] [--csv out.csv]
    python -m orchestration.defs.dialing.cli pause|resume|stop ID [--reason TEXT]
    python -m orchestration.defs.dialing.cli status [-c ID]

Ledger: CALLCENTER_DIALING_DSN (PostgreSQL) or CALLCENTER_DATA_DIR (SQLite). Campaigns:
CALLCENTER_CAMPAIGNS_DIR, default the repository's campaigns/. ``stop`` here does not hang
up calls in progress (that needs LiveKit: use the campaign_control job with
hang_up_live_calls). Dialing itself only runs in the dialing_tick job.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenter.campaign import load_catalog
from orchestration.defs.dialing.assets import fetch_contact_list, utc_clock
from orchestration.defs.dialing.controls import ControlAction, apply_control
from orchestration.defs.dialing.dialer import DialingTick, TickSettings
from orchestration.defs.dialing.dnc import import_registry
from orchestration.defs.dialing.ledger import DialStore, open_store
from orchestration.defs.dialing.planner import ABANDONMENT_WINDOW
from orchestration.defs.dialing.resources import LEDGER_FILENAME
from orchestration.resources.storage import RecordingsBucket

DEFAULT_CAMPAIGNS = Path(__file__).resolve().parents[3] / "campaigns"


def _store() -> DialStore:
    dsn, data_dir = os.environ.get("CALLCENTER_DIALING_DSN"), os.environ.get("CALLCENTER_DATA_DIR")
    return open_store(Path(data_dir) / LEDGER_FILENAME if data_dir else None, dsn)


def _bucket() -> RecordingsBucket:
    """The bucket client for gs:// lists and registries, configured as the code location's."""
    return RecordingsBucket(
        bucket_name=os.environ.get("CALLCENTER_RECORDINGS_BUCKET", ""),
        project=os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
        emulator_host=os.environ.get("STORAGE_EMULATOR_HOST") or None,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="dialing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("load")
    dry = sub.add_parser("dry-run")
    dry.add_argument("-c", "--campaign", action="append")
    dry.add_argument("--at", help="plan for this UTC time instead of now")
    dry.add_argument("--csv", type=Path, help="write every contact's decision and reason here")
    dry.add_argument(
        "--global-limit", type=int, default=8, help="fleet-wide concurrent calls (CallCapacity.global_limit)"
    )
    for action in ControlAction:
        p = sub.add_parser(action.value)
        p.add_argument("campaign")
        p.add_argument("--reason", default="operator")
    st = sub.add_parser("status")
    st.add_argument("-c", "--campaign", action="append")
    args = ap.parse_args(argv)

    catalog = load_catalog(Path(os.environ.get("CALLCENTER_CAMPAIGNS_DIR") or DEFAULT_CAMPAIGNS))
    store = _store()
    try:
        if args.cmd == "load":
            now = datetime.now(UTC)
            for cid, cf in sorted(catalog.items()):
                lst = fetch_contact_list(cf, _bucket())
                store.replace_contacts(cid, lst.contacts)
                print(
                    f"{cid}: {lst.rows} rows, {len(lst.contacts)} loaded, {len(lst.invalid)} invalid, {len(lst.duplicates)} duplicate"
                )
                for r in lst.invalid + lst.duplicates:
                    print(f"  row {r.row} {r.contact_id or '-'} {r.value or ''}: {r.reason}")
                for path in cf.campaign.dnc_registry:
                    outcome = import_registry(
                        store, cf.resolve(path), [cf.campaign.default_region], now, read_gs=_bucket().read_uri
                    )
                    print(
                        f"  {outcome.source}: {outcome.status}, {outcome.numbers} numbers suppressed {outcome.detail}"
                    )
        elif args.cmd == "dry-run":
            tick = DialingTick(
                store, catalog, None, lambda _n: None, TickSettings(global_limit=args.global_limit), utc_clock(args.at)
            )
            plans = tick.dry_run(args.campaign)
            for plan in plans.values():
                print(plan.explain())
            if args.csv:
                with args.csv.open("w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["campaign_id", "contact_id", "phone_number", "decision", "reason", "detail"])
                    for cid, plan in plans.items():
                        w.writerows(
                            [cid, s.contact.contact_id, s.contact.phone_number, "dial", "", s.why]
                            for s in plan.selected
                        )
                        w.writerows(
                            [cid, s.contact_id, s.phone_number, "skip", s.reason.value, s.detail] for s in plan.skipped
                        )
                print(f"wrote {args.csv}")
        elif args.cmd == "status":
            now = datetime.now(UTC)
            for cid in args.campaign or sorted(catalog):
                state, reason = store.campaign_state(cid)
                abandoned, answered = store.abandonment(cid, now - ABANDONMENT_WINDOW)
                rate = f"{abandoned / answered:.1%}" if answered else "n/a"
                counts = store.outcome_counts(cid, since=now - timedelta(days=30))
                print(
                    f"{cid}: {state.value} ({reason or '-'}); last 30 days {dict(sorted(counts.items()))}; abandonment {rate}"
                )
        else:
            if args.campaign not in catalog:
                print(f"unknown campaign {args.campaign!r}; known: {', '.join(sorted(catalog))}", file=sys.stderr)
                return 2
            live = apply_control(store, args.campaign, ControlAction(args.cmd), args.reason, datetime.now(UTC))
            print(f"{args.campaign}: {args.cmd} recorded; {len(live)} calls still in progress")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
