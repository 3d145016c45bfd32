"""Where a replay's agent worker runs and what it writes to."""

from __future__ import annotations

from functools import cached_property

import dagster as dg
from pydantic import Field

from callcenter.bucket import Recordings


class ReplayAgent(dg.ConfigurableResource):
    """The replay's agent worker: its base environment (the engines it talks to, on top of the
    code location's own) and the scratch bucket its replayed calls are written to."""

    scratch_bucket: str = Field(
        description="never the recordings bucket: replayed calls must not reach post-call or dialing"
    )
    project: str | None = None
    emulator_host: str | None = None
    worker_env: dict[str, str] = Field(default_factory=dict, description="extra environment of the agent worker")
    worker_start_timeout_s: float = Field(120.0, gt=0)
    agent_timeout_s: float = Field(30.0, gt=0, description="longest wait for the agent to join or answer a caller turn")
    hang_up_after_s: float = Field(3.0, gt=0, description="the caller hangs up this long after the agent's last words")
    report_timeout_s: float = Field(90.0, gt=0, description="longest wait for the replayed call's session report")

    @cached_property
    def scratch(self) -> Recordings:
        return Recordings(self.scratch_bucket, self.project, self.emulator_host)

    def check_apart_from(self, recordings_bucket: str) -> None:
        if self.scratch_bucket == recordings_bucket:
            raise dg.Failure(
                f"the replay's scratch bucket is the recordings bucket ({recordings_bucket}): replayed calls would be "
                "indexed by post-call and their do-not-call requests swept by dialing; set CALLCENTER_REPLAY_BUCKET"
            )

    def ensure_local_bucket(self) -> None:
        """On the emulator the scratch bucket is made on first use; in GCS it is provisioned."""
        if self.emulator_host and self.scratch.client.lookup_bucket(self.scratch_bucket) is None:
            self.scratch.client.create_bucket(self.scratch_bucket)
