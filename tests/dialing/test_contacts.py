"""Contact lists: normalisation, validation with reasons, deduplication, registry files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.defs.dialing.contacts import ContactListError, read_table, validate_contacts
from orchestration.defs.dialing.dnc import parse_registry
from orchestration.defs.dialing.windows import window_verdict
from tests.dialing.conftest import campaign

CSV = """contact_id,phone,name,tz,plan
a1,(212) 555-0101,Ada,,gold
a2,+1 312 555 0102,Grace,America/Chicago,silver
a3,555-01,Short,,
a4,+1 900 555 0104,Premium,,
a5,212-555-0101,Ada again,,
a6,+1 415 555 0106,Bad zone,Mars/Base,
,+1 415 555 0107,No id,,
a2,+1 303 555 0108,Reused id,,
a9,0212 555 0109,Nonsense,,
a10,02079460123,London local,,
"""


def test_rows_are_normalised_validated_and_deduplicated(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(CSV)
    lst = validate_contacts(read_table(str(path)), default_region="US")

    assert [(c.contact_id, c.phone_number) for c in lst.contacts] == [("a1", "+12125550101"), ("a2", "+13125550102")]
    assert lst.contacts[0].time_zones == ("America/New_York",) and lst.contacts[0].zone_source == "number"
    assert lst.contacts[1].time_zones == ("America/Chicago",) and lst.contacts[1].zone_source == "list"
    assert lst.contacts[0].fields == {"plan": "gold"}

    invalid = {r.row: r.reason for r in lst.invalid}
    assert "wrong length" in invalid[3]
    assert "premium-rate" in invalid[4]
    assert "unknown time zone" in invalid[6]
    assert invalid[7] == "missing contact id"
    assert 9 in invalid and 10 in invalid  # not valid US numbers
    dupes = {r.row: r.reason for r in lst.duplicates}
    assert dupes == {5: "same number as contact a1", 8: "contact id a2 already used for +13125550102"}
    assert lst.rows == 10 and len(lst.contacts) + len(lst.invalid) + len(lst.duplicates) == lst.rows


def test_default_region_reads_national_numbers(tmp_path: Path) -> None:
    path = tmp_path / "uk.csv"
    path.write_text("contact_id,phone_number\nu1,020 7946 0123\n")
    lst = validate_contacts(read_table(str(path)), default_region="GB")
    assert [c.phone_number for c in lst.contacts] == ["+442079460123"]
    assert lst.contacts[0].time_zones == ("Europe/London",)


def test_parquet_lists_are_read(tmp_path: Path) -> None:
    path = tmp_path / "list.parquet"
    pq.write_table(pa.table({"contact_id": ["p1"], "phone_number": ["+12125550111"], "name": ["Pat"]}), path)
    assert [c.phone_number for c in validate_contacts(read_table(str(path))).contacts] == ["+12125550111"]


def test_a_list_without_a_number_column_names_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,mobile\n1,2125550101\n")
    with pytest.raises(ContactListError, match="number column.*'mobile'"):
        validate_contacts(read_table(str(path)))


def test_custom_columns_beyond_what_the_agent_takes_are_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    extra = [f"col{i}" for i in range(33)]
    path.write_text("contact_id,phone_number," + ",".join(extra) + "\nw1,+12125550101," + ",".join("x" * 33) + "\n")
    with pytest.raises(ContactListError, match="33 custom columns; at most 32 reach the agent"):
        validate_contacts(read_table(str(path)))


def test_a_field_too_long_for_the_dispatch_rejects_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"contact_id,phone_number,notes\nl1,+12125550101,{'n' * 501}\nl2,+12125550102,short\n")
    lst = validate_contacts(read_table(str(path)))
    assert [c.contact_id for c in lst.contacts] == ["l2"]
    assert "'notes' is longer than 500 characters" in lst.invalid[0].reason


def test_registry_file_numbers_in_any_notation(tmp_path: Path) -> None:
    path = tmp_path / "national-dnc.txt"
    path.write_text("# extract\nphone_number\n415,5550113\n(212) 555-0198\n+1 303 555 0104\nnot a number\n\n")
    reg = parse_registry(path)
    assert reg.source == f"registry:{path.resolve()}"
    assert reg.numbers == {"+14155550113", "+12125550198", "+13035550104"}
    assert reg.bad_lines == [(6, "not a number")]


def test_registry_numbers_without_a_country_code_are_read_in_each_campaigns_region(tmp_path: Path) -> None:
    """Read only as US numbers, a UK campaign's registry entry was no number at all, while its
    contact list read the same digits as +44 and dialled them."""
    path = tmp_path / "dnc.txt"
    path.write_text("020 7946 0018\n(212) 555-0198\n")
    assert "+442079460018" not in parse_registry(path).numbers  # the old reading: US only
    assert "+442079460018" in parse_registry(path, ["GB"]).numbers
    both = parse_registry(path, ["US", "GB"])
    assert "+442079460018" in both.numbers and "+12125550198" in both.numbers and both.bad_lines == []


def test_two_registry_files_of_one_name_are_two_sources(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "dnc.txt").write_text("+12125550101\n")
    (tmp_path / "b" / "dnc.txt").write_text("+12125550102\n")
    assert parse_registry(tmp_path / "a" / "dnc.txt").source != parse_registry(tmp_path / "b" / "dnc.txt").source


# Wednesday 13:00 UTC: 08:00 in New York, 05:00 in Los Angeles.
WEDNESDAY_13Z = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def test_a_lists_time_zone_narrows_the_numbers_zones_and_never_widens_them(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "contact_id,phone_number,time_zone\n"
        "la,+13105550101,America/New_York\n"  # a Los Angeles number said to be in New York
        "tf,+18005550107,America/Chicago\n"  # toll-free: the list picks one of its many zones
        "ny,+12125550102,America/New_York\n"
    )
    contacts = {c.contact_id: c for c in validate_contacts(read_table(str(path))).contacts}
    la = contacts["la"]
    assert "America/Los_Angeles" in la.time_zones
    allowed, why = window_verdict(campaign().calling_window, WEDNESDAY_13Z, la.time_zones)
    assert not allowed and "05:00" in why
    assert contacts["tf"].time_zones == ("America/Chicago",) and contacts["tf"].zone_source == "list"
    assert contacts["ny"].time_zones == ("America/New_York",) and contacts["ny"].zone_source == "list"
