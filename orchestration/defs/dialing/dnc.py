"""Do-not-call registry files supplied by the operator (e.g. a national registry extract).

One number per line, in any common notation ("+1 415 555 0123", "4155550123",
"415,5550123"); blank lines and lines starting with '#' are ignored. Each file is imported
as its own source (by full path) and replaces that source's previous import, so removals
take effect.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

_SEPARATORS = re.compile(r"[\s,;.()\-/]")


@dataclass
class RegistryFile:
    source: str
    numbers: set[str]
    bad_lines: list[tuple[int, str]]
    digest: str


def parse_registry(path: Path, regions: Iterable[str] = ("US",)) -> RegistryFile:
    """Numbers of a registry file. A line without a country code is read in each of ``regions``
    (the regions of the campaigns it serves), and suppressed in all of them: read only as a
    US number, a UK campaign's "020 7946 0018" was no number at all while its contact list read
    the same digits as +44 and dialled them. The source is the file's full path: two files of
    one name in different folders are two sources."""
    if not path.is_file():
        raise FileNotFoundError(f"do-not-call registry file {path} does not exist (check the campaign's dnc_registry)")
    regions = sorted(set(regions)) or ["US"]
    data = path.read_bytes()
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
    return RegistryFile(f"registry:{path.resolve()}", numbers, bad, hashlib.sha256(data).hexdigest()[:16])
