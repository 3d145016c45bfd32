"""Do-not-call registry files supplied by the operator (e.g. a national registry extract).

One number per line, in any common notation ("+1 415 555 0123", "4155550123",
"415,5550123"); blank lines and lines starting with '#' are ignored. A file is a local path
or ``gs://bucket/object`` (read with the recordings bucket's client). Each file is imported
as its own source (by full path or URI) and replaces that source's previous import, so
removals take effect.

Registries fail closed. Every import is recorded: a campaign whose registry was never
imported, or whose last import failed, dials nobody (the previous numbers stay suppressed
too). A re-import that would drop many numbers at once (a truncated upload, an emptied
file) is held: the previous list stays and the new file's numbers are added, until the
operator accepts the shrink.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    from callcenter.campaign import CampaignFile
    from orchestration.defs.dialing.ledger import DialStore, RegistryImport

_SEPARATORS = re.compile(r"[\s,;.()\-/]")


@dataclass
class RegistryFile:
    source: str
    numbers: set[str]
    bad_lines: list[tuple[int, str]]
    digest: str


# A re-import dropping more than this share of the previous numbers (and more than
# SHRINK_MIN_REMOVED of them) is held until accepted: registry updates remove few numbers.
SHRINK_MAX_SHARE = 0.1
SHRINK_MIN_REMOVED = 10


class RegistryError(RuntimeError):
    """A registry file could not be read."""


def registry_location(location: str) -> str:
    """The canonical name of a registry file: its gs:// URI, or its absolute local path."""
    return location if location.startswith("gs://") else str(Path(location).resolve())


def registry_source(location: str) -> str:
    """The ledger source a registry file's numbers are stored under."""
    return f"registry:{registry_location(location)}"


def campaign_registries(cf: CampaignFile, fleet_files: Iterable[str] = ()) -> list[str]:
    """Every registry location a campaign is suppressed by: its own and the fleet-wide ones."""
    own = [registry_location(cf.resolve(p)) for p in cf.campaign.dnc_registry]
    return sorted({*own, *(registry_location(p) for p in fleet_files)})


def registry_block(imports: Mapping[str, RegistryImport], locations: Iterable[str]) -> str | None:
    """Why a campaign may not dial on account of its registries, or None."""
    for location in locations:
        state = imports.get(registry_source(location))
        if state is None:
            return f"do-not-call registry {location} has not been imported (materialise do_not_call_list)"
        if state.status == "failed":
            return f"do-not-call registry {location} failed to import: {state.detail}"
    return None


def campaign_registry_block(store: DialStore, cf: CampaignFile | None, fleet_files: Iterable[str] = ()) -> str | None:
    """Why the campaign's do-not-call registries forbid dialling it now (one never imported, or
    whose last import failed), or None; a campaign no longer in the catalog has none."""
    if cf is None:
        return None
    locations = campaign_registries(cf, fleet_files)
    return registry_block(store.registry_imports(), locations) if locations else None


def parse_registry(
    path: Path | str, regions: Iterable[str] = ("US",), read_gs: Callable[[str], bytes] | None = None
) -> RegistryFile:
    """Numbers of a registry file. A line without a country code is read in each of ``regions``
    (the regions of the campaigns it serves), and suppressed in all of them: read only as a
    US number, a UK campaign's "020 7946 0018" was no number at all while its contact list read
    the same digits as +44 and dialled them. The source is the file's full path or URI: two
    files of one name in different folders are two sources. ``read_gs`` reads gs:// files."""
    location = str(path)
    if location.startswith("gs://"):
        if read_gs is None:
            raise RegistryError(f"do-not-call registry {location} is in a bucket and no bucket client was given")
        try:
            data = read_gs(location)
        except Exception as exc:  # NotFound, Forbidden, a network error: all fail the import
            raise RegistryError(f"cannot read do-not-call registry {location}: {type(exc).__name__}: {exc}") from exc
    else:
        file = Path(location)
        if not file.is_file():
            raise FileNotFoundError(
                f"do-not-call registry file {file} does not exist (check the campaign's dnc_registry)"
            )
        data = file.read_bytes()
    regions = sorted(set(regions)) or ["US"]
    numbers: set[str] = set()
    bad: list[tuple[int, str]] = []
    for i, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#") or text.lower().startswith(("phone", "number", "area")):
            continue
        compact = _SEPARATORS.sub("", text)
        read = set()
        for region in regions:
            try:
                parsed = phonenumbers.parse(compact, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(parsed):
                # Suppress even numbers phonenumbers calls invalid: a registry entry is never ignored.
                read.add(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
        if read:
            numbers |= read
        else:
            bad.append((i, text))
    return RegistryFile(registry_source(location), numbers, bad, hashlib.sha256(data).hexdigest()[:16])


@dataclass
class ImportOutcome:
    source: str
    status: str  # "imported" | "held" (previous list kept) | "failed"
    numbers: int
    detail: str = ""


def import_registry(
    store: DialStore,
    location: str,
    regions: Iterable[str],
    at: datetime,
    *,
    read_gs: Callable[[str], bytes] | None = None,
    accept_shrink: bool = False,
) -> ImportOutcome:
    """Import one registry file into the ledger, failing closed; the outcome is recorded."""
    source = registry_source(location)
    try:
        reg = parse_registry(location, regions, read_gs)
    except (OSError, RegistryError) as exc:
        outcome = ImportOutcome(source, "failed", 0, str(exc))
        store.record_registry_import(source, outcome.status, outcome.numbers, None, outcome.detail, at)
        return outcome
    previous = store.do_not_call_counts().get(source, 0)
    removed = len(store.do_not_call_numbers(source) - reg.numbers) if previous else 0
    if reg.bad_lines and not reg.numbers:
        outcome = ImportOutcome(source, "failed", 0, f"no readable number in {len(reg.bad_lines)} lines")
    elif (
        not accept_shrink
        and previous
        and (not reg.numbers or (removed > SHRINK_MAX_SHARE * previous and removed > SHRINK_MIN_REMOVED))
    ):
        # A truncated or emptied file: keep every number imported before, add the new ones.
        store.add_do_not_call(reg.numbers, source, at)
        outcome = ImportOutcome(
            source,
            "held",
            previous,
            f"would remove {removed} of {previous} numbers ({len(reg.numbers)} read): previous list kept; "
            "if the file is complete, accept the shrink (do_not_call_list config accept_shrink)",
        )
    else:
        outcome = ImportOutcome(source, "imported", store.replace_do_not_call_source(source, reg.numbers, at))
    if reg.bad_lines and outcome.status != "failed":
        outcome.detail = (outcome.detail + "; " if outcome.detail else "") + f"{len(reg.bad_lines)} unreadable lines"
    store.record_registry_import(source, outcome.status, outcome.numbers, reg.digest, outcome.detail, at)
    return outcome
