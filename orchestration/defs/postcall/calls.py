"""Identity of a completed call in the bucket: its session report's object name + generation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from callcenter.paths import AUDIO_FILENAME, REPORT_FILENAME, parse_object_name


@dataclass(frozen=True, order=True)
class CallRef:
    """One completed call: ``session.json`` is written last, so its presence means the call is done.

    A new generation of the same report (a re-upload) is a new ref and gets processed again;
    the same generation seen twice is the same work.
    """

    report_object: str
    generation: int

    def __post_init__(self) -> None:
        parsed = parse_object_name(self.report_object)
        if parsed is None or parsed.name != REPORT_FILENAME:
            raise ValueError(f"not a session report in the recordings layout: {self.report_object!r}")

    @property
    def call_id(self) -> str:
        return self.report_object.rsplit("/", 2)[-2]

    @property
    def day(self) -> date:
        parsed = parse_object_name(self.report_object)
        assert parsed is not None
        return parsed.day

    @property
    def audio_object(self) -> str:
        return self.report_object.removesuffix(REPORT_FILENAME) + AUDIO_FILENAME

    @property
    def key(self) -> str:
        return f"{self.report_object}#{self.generation}"

    @classmethod
    def parse(cls, key: str) -> CallRef:
        name, sep, generation = key.rpartition("#")
        if not sep or not generation.isdigit():
            raise ValueError(f"call key must be '<session.json object>#<generation>', got {key!r}")
        return cls(name, int(generation))
