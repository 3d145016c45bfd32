"""Do-not-call registries fail closed: gs:// files are read, a failed import blocks its
campaigns, a truncated re-import keeps the previous list."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from callcenter.campaign import load_catalog
from orchestration.defs.dialing.assets import do_not_call_list
from orchestration.defs.dialing.ledger import SqliteDialStore
from orchestration.defs.dialing.resources import LEDGER_FILENAME, DialLedgerStore
from orchestration.resources.campaigns import CampaignCatalog
from tests.dialing.conftest import FakeClock, campaign, make_tick, ny_contacts, write_catalog


def _import(tmp_path: Path, campaigns_dir: Path, bucket=None, accept_shrink: list[str] | None = None):
    resources = {
        "dial_ledger_store": DialLedgerStore(data_dir=str(tmp_path / "data")),
        "campaign_catalog": CampaignCatalog(directory=str(campaigns_dir)),
        "recordings_bucket": bucket if bucket is not None else dg.ResourceDefinition.none_resource(),
    }
    config = {"ops": {"do_not_call_list": {"config": {"accept_shrink": accept_shrink or []}}}}
    return dg.materialize([do_not_call_list], resources=resources, run_config=config, raise_on_error=False)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return result.get_step_failure_events()[0].event_specific_data.error.message


def _store(tmp_path: Path) -> SqliteDialStore:
    return SqliteDialStore(tmp_path / "data" / LEDGER_FILENAME)


def _plans(tmp_path: Path, campaigns_dir: Path):
    store = _store(tmp_path)
    try:
        return make_tick(
            store, load_catalog(campaigns_dir), None, None, FakeClock(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
        ).dry_run()
    finally:
        store.close()


def _load_contacts(tmp_path: Path, *campaign_ids: str) -> None:
    (tmp_path / "data" / "dialing").mkdir(parents=True, exist_ok=True)
    store = _store(tmp_path)
    try:
        for cid in campaign_ids:
            store.replace_contacts(cid, ny_contacts(3))
    finally:
        store.close()


def test_gs_registry_files_are_read_through_the_bucket_client(tmp_path: Path, bucket) -> None:
    bucket.write_bytes("dnc/national.txt", b"# extract\n(212) 555-0002\n", "text/plain")
    campaigns_dir = tmp_path / "campaigns"
    write_catalog(campaigns_dir, campaign(dnc_registry=[f"gs://{bucket.bucket_name}/dnc/national.txt"]))
    _load_contacts(tmp_path, "renewals")

    result = _import(tmp_path, campaigns_dir, bucket)
    assert result.success
    store = _store(tmp_path)
    try:
        assert store.is_do_not_call("+12125550002")
    finally:
        store.close()
    plan = _plans(tmp_path, campaigns_dir)["renewals"]
    assert plan.skip_counts.get("do_not_call") == 1
    assert "+12125550002" not in {s.contact.phone_number for s in plan.selected} and plan.selected


def test_a_registry_that_fails_to_import_blocks_its_campaigns(tmp_path: Path, bucket) -> None:
    location = f"gs://{bucket.bucket_name}/dnc/national.txt"
    campaigns_dir = tmp_path / "campaigns"
    write_catalog(
        campaigns_dir,
        campaign(id="gated", dnc_registry=[location]),
        campaign(id="local", dnc_registry=["missing-registry.txt"]),
        campaign(id="free"),
    )
    _load_contacts(tmp_path, "gated", "local", "free")

    # Never imported: nobody on those campaigns is dialled.
    plans = _plans(tmp_path, campaigns_dir)
    assert plans["gated"].selected == [] and plans["gated"].skip_counts == {"do_not_call_registry": 3}
    assert plans["local"].selected == [] and plans["free"].selected

    bucket.write_bytes("dnc/national.txt", b"+12125550002\n", "text/plain")
    result = _import(tmp_path, campaigns_dir, bucket)
    assert not result.success and "missing-registry.txt" in _failure(result)
    plans = _plans(tmp_path, campaigns_dir)
    assert len(plans["gated"].selected) == 2  # imported: dials again, minus the listed number
    assert plans["local"].skip_counts == {"do_not_call_registry": 3}  # its file is missing
    assert "missing-registry.txt" in plans["local"].skipped[0].detail

    # The gs:// file vanishes: the import fails, the campaign stops, the old numbers stay.
    bucket.bucket.blob("dnc/national.txt").delete()
    result = _import(tmp_path, campaigns_dir, bucket)
    assert not result.success and location in _failure(result)
    plans = _plans(tmp_path, campaigns_dir)
    assert plans["gated"].selected == [] and plans["gated"].skip_counts == {"do_not_call_registry": 3}
    assert plans["free"].selected
    store = _store(tmp_path)
    try:
        assert store.is_do_not_call("+12125550002")
    finally:
        store.close()


def test_a_truncated_reimport_does_not_clear_the_previous_list(tmp_path: Path) -> None:
    campaigns_dir = tmp_path / "campaigns"
    write_catalog(campaigns_dir, campaign(dnc_registry=["dnc.txt"]))
    registry = campaigns_dir / "dnc.txt"
    numbers = [f"+1212555{1000 + i}" for i in range(200)]
    registry.write_text("\n".join(numbers) + "\n")
    assert _import(tmp_path, campaigns_dir).success

    registry.write_text("\n".join(numbers[:20]) + "\n+1212")  # cut off mid-upload
    result = _import(tmp_path, campaigns_dir)
    assert not result.success and "kept" in _failure(result)
    store = _store(tmp_path)
    try:
        assert all(store.is_do_not_call(n) for n in numbers)
    finally:
        store.close()

    registry.write_text("")  # emptied
    assert not _import(tmp_path, campaigns_dir).success
    store = _store(tmp_path)
    try:
        assert all(store.is_do_not_call(n) for n in numbers)
    finally:
        store.close()

    # The previous list still suppresses everyone: the campaign is not blocked by a held import.
    assert _plans(tmp_path, campaigns_dir)["renewals"].skip_counts.get("do_not_call_registry") is None

    # A few removals are an ordinary update; a large one only when the operator accepts it.
    registry.write_text("\n".join(numbers[5:]) + "\n")
    assert _import(tmp_path, campaigns_dir).success
    registry.write_text("\n".join(numbers[:20]) + "\n")
    assert _import(tmp_path, campaigns_dir, accept_shrink=[str(registry)]).success
    store = _store(tmp_path)
    try:
        assert store.is_do_not_call(numbers[10]) and not store.is_do_not_call(numbers[100])
    finally:
        store.close()
