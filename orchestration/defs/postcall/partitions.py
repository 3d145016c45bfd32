"""Post-call partitions: one per UTC day, matching the bucket's date prefixes.

Tens of thousands of calls a day rule out one partition per call; a day partition holds
many runs (one per sensor batch), each idempotent per call.
"""

from __future__ import annotations

import dagster as dg

daily_calls = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC", end_offset=1)
