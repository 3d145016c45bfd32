"""Do-not-call registry files supplied by the operator (e.g. a national registry extract).

One number per line, in any common notation ("+1 415 555 0123", "4155550123",
"415,5550123"); blank lines and lines starting with '#' are ignored. Each file is imported
as its own source and replaces that source's previous import, so removals take effect.
"""

from __future__ import annotations

import hashlib
import re
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


def parse_registry(path: Path, default_region: str = "US") -> RegistryFile:
    if not path.is_file():
        raise FileNotFoundError(f"do-not-call registry file {path} does not exist (check the campaign's dnc_registry)")
    data = path.read_bytes()
    numbers: set[str] = set()
    bad: list[tuple[int, str]] = []
    for i, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#") or text.lower().startswith(("phone", "number", "area")):
            continue
        compact = _SEPARATORS.sub("", text)
        try:
            parsed = phonenumbers.parse(compact, default_region)
        except phonenumbers.NumberParseException:
            bad.append((i, text))
            continue
        if not phonenumbers.is_possible_number(parsed):
            bad.append((i, text))
            continue
        # Suppress even numbers phonenumbers calls invalid: a registry entry is never ignored.
        numbers.add(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return RegistryFile(f"registry:{path.name}", numbers, bad, hashlib.sha256(data).hexdigest()[:16])
