"""Contact lists: read (CSV/Parquet, local or gs://), normalise numbers to E.164, validate,
deduplicate. Invalid and duplicate rows are reported with their row number and reason."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import phonenumbers
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from callcenter.dispatch import FIELD_NAME, MAX_CONTACT_FIELDS, MAX_FIELD_CHARS
from orchestration.defs.dialing.windows import is_known_zone, zones_for_number

ID_COLUMNS = ("contact_id", "id")
NUMBER_COLUMNS = ("phone_number", "phone", "number", "e164")
NAME_COLUMNS = ("name", "full_name")
ZONE_COLUMNS = ("time_zone", "timezone", "tz")

# Numbers that cost the callee or reach no person: never dialled by a campaign.
_UNDIALLABLE_TYPES = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost number",
    phonenumbers.PhoneNumberType.PAGER: "pager number",
}


class Contact(NamedTuple):
    """A tuple, not a dataclass: a tick builds 100k of these and tuples are ~5x cheaper."""

    contact_id: str
    phone_number: str  # E.164
    name: str | None
    time_zones: tuple[str, ...]  # candidate IANA zones; one when given in the list
    zone_source: str  # "list" | "number" | "list+number" (the list's zone is not one of the number's: both hold)
    fields: Mapping[str, Any] = MappingProxyType({})  # custom columns for the script


@dataclass(frozen=True, slots=True)
class RejectedRow:
    row: int  # 1-based data row (header excluded)
    contact_id: str | None
    value: str | None
    reason: str


@dataclass
class ContactList:
    contacts: list[Contact]
    invalid: list[RejectedRow]
    duplicates: list[RejectedRow]
    rows: int


class ContactListError(ValueError):
    pass


def read_table(location: str, data: bytes | None = None) -> pa.Table:
    """CSV or Parquet by extension; ``data`` holds the bytes when they were fetched from gs://."""
    suffix = Path(location.split("?")[0]).suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(io.BytesIO(data) if data is not None else location)
        if suffix in (".csv", ".txt"):
            return _read_csv_as_text(data if data is not None else Path(location).read_bytes())
    except (OSError, pa.ArrowInvalid) as e:
        raise ContactListError(f"cannot read contact list {location}: {e}") from e
    raise ContactListError(f"contact list {location} must be .csv or .parquet")


def _read_csv_as_text(data: bytes) -> pa.Table:
    # Every column as text: leading zeros and '+' in numbers must survive type inference.
    names = pa_csv.open_csv(io.BytesIO(data)).schema.names
    return pa_csv.read_csv(
        io.BytesIO(data),
        convert_options=pa_csv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False),
    )


def _pick(columns: list[str], choices: tuple[str, ...]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for choice in choices:
        if choice in lowered:
            return lowered[choice]
    return None


def validate_contacts(table: pa.Table, default_region: str = "US") -> ContactList:
    columns = table.column_names
    id_col, number_col = _pick(columns, ID_COLUMNS), _pick(columns, NUMBER_COLUMNS)
    if id_col is None or number_col is None:
        raise ContactListError(
            f"contact list needs a contact id column ({'/'.join(ID_COLUMNS)}) and a number column "
            f"({'/'.join(NUMBER_COLUMNS)}); it has {columns}"
        )
    name_col, zone_col = _pick(columns, NAME_COLUMNS), _pick(columns, ZONE_COLUMNS)
    custom = [c for c in columns if c not in {id_col, number_col, name_col, zone_col}]
    # Custom columns travel to the agent in the dispatch (callcenter.dispatch limits them).
    if len(custom) > MAX_CONTACT_FIELDS:
        raise ContactListError(
            f"contact list has {len(custom)} custom columns; at most {MAX_CONTACT_FIELDS} reach the agent: "
            "drop the ones the script does not use"
        )
    bad_names = [c for c in custom if not FIELD_NAME.fullmatch(c)]
    if bad_names:
        raise ContactListError(
            f"contact list column names {bad_names} must be 1-64 letters, digits, spaces, '_' or '-'"
        )

    contacts: list[Contact] = []
    invalid: list[RejectedRow] = []
    duplicates: list[RejectedRow] = []
    by_number: dict[str, str] = {}
    by_id: dict[str, str] = {}
    for i, row in enumerate(table.to_pylist(), start=1):
        contact_id = _text(row.get(id_col))
        raw_number = _text(row.get(number_col))
        if not contact_id:
            invalid.append(RejectedRow(i, None, raw_number, "missing contact id"))
            continue
        e164, zones, problem = normalise_number(raw_number, default_region)
        if problem:
            invalid.append(RejectedRow(i, contact_id, raw_number, problem))
            continue
        assert e164 is not None
        zone_source = "number"
        given_zone = _text(row.get(zone_col)) if zone_col else None
        if given_zone:
            if not is_known_zone(given_zone):
                invalid.append(
                    RejectedRow(
                        i,
                        contact_id,
                        given_zone,
                        f"unknown time zone {given_zone!r} (use an IANA name such as America/Chicago)",
                    )
                )
                continue
            zones, zone_source = narrow_zones(zones, given_zone)
        if contact_id in by_id:
            reason = (
                f"duplicate row for contact {contact_id}"
                if by_id[contact_id] == e164
                else f"contact id {contact_id} already used for {by_id[contact_id]}"
            )
            duplicates.append(RejectedRow(i, contact_id, e164, reason))
            continue
        if e164 in by_number:
            duplicates.append(RejectedRow(i, contact_id, e164, f"same number as contact {by_number[e164]}"))
            continue
        by_number[e164] = contact_id
        by_id[contact_id] = e164
        fields = {c: row.get(c) for c in custom if row.get(c) not in (None, "")}
        too_long = [c for c, v in fields.items() if len(str(v)) > MAX_FIELD_CHARS]
        if too_long:
            invalid.append(
                RejectedRow(i, contact_id, e164, f"{too_long[0]!r} is longer than {MAX_FIELD_CHARS} characters")
            )
            continue
        contacts.append(
            Contact(contact_id, e164, _text(row.get(name_col)) if name_col else None, zones, zone_source, fields)
        )
    return ContactList(contacts, invalid, duplicates, table.num_rows)


def normalise_number(raw: str | None, default_region: str) -> tuple[str | None, tuple[str, ...], str | None]:
    """(E.164, candidate zones, problem). ``problem`` is None for a dialable number."""
    if not raw:
        return None, (), "missing phone number"
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as e:
        return None, (), f"not a phone number: {e}"
    if not phonenumbers.is_possible_number(parsed):
        return None, (), "impossible number (wrong length)"
    if not phonenumbers.is_valid_number(parsed):
        return None, (), "invalid number for its region"
    kind = _UNDIALLABLE_TYPES.get(phonenumbers.number_type(parsed))
    if kind:
        return None, (), f"{kind}: not dialled by campaigns"
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, zones_for_number(parsed), None


def narrow_zones(number_zones: tuple[str, ...], listed: str) -> tuple[tuple[str, ...], str]:
    """(zones, source): a list's time zone picks one of the zones the number can be in; it
    never widens them. A New York zone on a Los Angeles number keeps Los Angeles too, so the
    contact is called only when it is inside the window in both: at 08:00 in New York it is
    05:00 where the number is. A number with no known zone takes the list's."""
    if not number_zones or listed in number_zones:
        return (listed,), "list"
    return tuple(sorted({*number_zones, listed})), "list+number"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None
