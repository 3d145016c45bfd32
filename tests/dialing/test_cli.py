"""The operator CLI: load the demo list, dry run with a CSV of every decision, pause."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from orchestration.defs.dialing.cli import main


def test_load_dry_run_and_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CALLCENTER_DIALING_DSN", raising=False)
    monkeypatch.delenv("CALLCENTER_CAMPAIGNS_DIR", raising=False)
    assert main(["load"]) == 0
    assert "9 loaded, 3 invalid, 1 duplicate" in capsys.readouterr().out

    out_csv = tmp_path / "dry.csv"
    assert main(["dry-run", "--at", "2026-11-25T15:00:00Z", "--csv", str(out_csv)]) == 0
    rows = [r for r in csv.DictReader(out_csv.open()) if r["campaign_id"] == "demo-renewals"]
    assert len(rows) == 9
    decisions = {r["contact_id"]: (r["decision"], r["reason"]) for r in rows}
    assert decisions["c-0001"] == ("dial", "") and decisions["c-0013"] == ("skip", "do_not_call")
    assert decisions["c-0003"] == ("skip", "outside_calling_window")  # 07:00 in Los Angeles

    assert main(["pause", "demo-renewals", "--reason", "script review"]) == 0
    capsys.readouterr()
    assert main(["dry-run", "--at", "2026-11-25T15:00:00Z"]) == 0
    assert "skip 9 x campaign_paused" in capsys.readouterr().out  # recall-2026-q4 is not paused
    assert main(["pause", "no-such-campaign"]) == 2
