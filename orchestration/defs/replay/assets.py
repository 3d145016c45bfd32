"""The replay asset: recorded calls played again through the agent with changed settings, each
compared with its original; the comparison is stored where the call browser reads it."""

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from google.api_core.exceptions import NotFound

from callcenter.paths import REPORT_FILENAME, day_prefix, parse_object_name
from callcenter.replay import CallComparison, CallSide, ReplayResult, ReplaySettings, ReplayStatus, write_result
from callcenter.report import SessionReport
from orchestration.defs.postcall.audio import RecordingUnusable
from orchestration.defs.postcall.resources import RedactionSettings
from orchestration.defs.postcall.transcription import MAX_RECORDING_BYTES
from orchestration.defs.replay.caller_turns import CallerTurn, caller_channel, split_caller_turns
from orchestration.defs.replay.comparison import compare, failed, side_of, skipped, summarize
from orchestration.defs.replay.config import ReplayConfig
from orchestration.defs.replay.replayer import (
    LiveKitLine,
    ReplayFailed,
    agent_worker,
    play_caller,
    wait_for_replay_report,
    worker_env,
)
from orchestration.defs.replay.resources import ReplayAgent
from orchestration.resources.livekit import LiveKitResource
from orchestration.resources.storage import RecordingsBucket

EVERY_CALL_REPLAYED = "every_call_replayed"


@dataclass
class _Planned:
    call_id: str
    original: SessionReport
    side: CallSide
    turns: list[CallerTurn]


def selected_call_ids(config: ReplayConfig, bucket: RecordingsBucket) -> tuple[list[str], str]:
    """The call ids to replay and the selection in words; dg.Failure for a bad or oversized one."""
    try:
        days = config.days()
    except ValueError as exc:
        raise dg.Failure(f"replay selection: {exc}") from None
    if days:
        ids = []
        for day in days:
            for blob in bucket.list_prefix(day_prefix(day)):
                parsed = parse_object_name(blob.name)
                if parsed is not None and parsed.name == REPORT_FILENAME:
                    ids.append(parsed.call_id)
        what = f"days {days[0]}..{days[-1]}" if len(days) > 1 else f"day {days[0]}"
    else:
        ids, what = list(dict.fromkeys(config.call_ids)), "chosen calls"
    if len(ids) > config.max_calls:
        raise dg.Failure(
            f"the selection ({what}) holds {len(ids)} calls, more than max_calls={config.max_calls}: "
            "narrow the days or raise max_calls"
        )
    return ids, f"{what}: {len(ids)} calls"


def _plan(call_id: str, bucket: RecordingsBucket, redaction: RedactionSettings) -> _Planned | CallComparison:
    try:
        report = bucket.recordings.read_report(call_id)
    except ValueError as exc:
        return failed(call_id, f"its session report is unreadable ({type(exc).__name__})")
    if report is None:
        return failed(call_id, "no session report in the recordings bucket")
    side = side_of(report, redaction.policy(), bucket.bucket_name)
    if report.answered_at is None:  # no answer, busy, declined, failed: no conversation to play
        return skipped(call_id, f"never answered ({report.outcome.value}): nothing to play back", side)

    def read_object(name: str) -> bytes | None:
        try:  # one byte past the limit at most: caller_channel refuses what is longer
            return bucket.read_bytes(name, max_bytes=MAX_RECORDING_BYTES)
        except NotFound:
            return None

    try:
        turns = split_caller_turns(report, caller_channel(report, read_object))
    except RecordingUnusable as exc:
        return failed(call_id, str(exc), side)
    except Exception as exc:  # a storage error: this call fails, not the run
        return failed(call_id, f"its recording could not be read ({type(exc).__name__})", side)
    if not turns:
        return skipped(call_id, "the caller said nothing in the original: nothing to play back", side)
    return _Planned(call_id, report, side, turns)


def _replay_group(
    group: Sequence[_Planned],
    settings: ReplaySettings,
    agent: ReplayAgent,
    line: LiveKitLine,
    redaction: RedactionSettings,
    agent_name: str,
    log_dir: Path,
    log,  # noqa: ANN001
) -> dict[str, CallComparison]:
    env = worker_env(
        agent.worker_env,
        settings,
        agent_name=agent_name,
        scratch_bucket=agent.scratch_bucket,
        livekit_env={"LIVEKIT_URL": line.url, "LIVEKIT_API_KEY": line.api_key, "LIVEKIT_API_SECRET": line.api_secret},
    )
    if agent.emulator_host:
        env["STORAGE_EMULATOR_HOST"] = agent.emulator_host
    out: dict[str, CallComparison] = {}
    try:
        with agent_worker(env, log_dir / f"{agent_name}.log", agent.worker_start_timeout_s):
            for planned in group:
                placed_at = datetime.now(UTC)
                try:
                    result = play_caller(
                        line,
                        agent_name,
                        planned.turns,
                        agent_timeout_s=agent.agent_timeout_s,
                        hang_up_after_s=agent.hang_up_after_s,
                    )
                    report = wait_for_replay_report(agent.scratch, result.room, placed_at, agent.report_timeout_s)
                    out[planned.call_id] = compare(
                        planned.side, side_of(report, redaction.policy(), agent.scratch_bucket)
                    )
                except ReplayFailed as exc:
                    out[planned.call_id] = failed(planned.call_id, str(exc), planned.side)
                except Exception as exc:  # one call's failure is its row's, never the run's
                    log.warning("replay of %s failed: %s", planned.call_id, type(exc).__name__)
                    out[planned.call_id] = failed(
                        planned.call_id, f"the replay failed ({type(exc).__name__})", planned.side
                    )
                log.info("replayed %s: %s", planned.call_id, out[planned.call_id].status.value)
    except ReplayFailed as exc:  # the worker never came up: every call of this group fails with why
        for planned in group:
            out.setdefault(planned.call_id, failed(planned.call_id, str(exc), planned.side))
    return out


def _rows_table(rows: Sequence[CallComparison]) -> str:
    """Ids, outcomes, flags and numbers only: no words of a call reach Dagster's metadata."""
    lines = [
        "| call | status | outcome before → after | disclosure regressions | DNC differs | agent words alike |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        before = r.original.outcome.value if r.original else "—"
        after = r.replay.outcome.value if r.replay else "—"
        sim = "—" if r.agent_similarity is None else f"{r.agent_similarity:.2f}"
        lines.append(
            f"| {r.call_id} | {r.status.value} | {before} → {after} | {', '.join(r.disclosure_regressions) or '—'} "
            f"| {'yes' if r.do_not_call_changed else 'no'} | {sim} |"
        )
    return "\n".join(lines)


@dg.asset(
    group_name="replay",
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_CALL_REPLAYED,
            asset="call_replays",
            description="no selected call failed to replay (calls with nothing to play are skipped, not failed)",
        )
    ],
    description="Recorded calls' caller sides played again through the agent with changed settings, each compared "
    "with its original (outcome, disclosures, do-not-call, per-turn latency, words); stored under replay/ in the "
    "recordings bucket for the call browser.",
)
def call_replays(
    context: dg.AssetExecutionContext,
    config: ReplayConfig,
    recordings_bucket: RecordingsBucket,
    livekit: LiveKitResource,
    replay_agent: ReplayAgent,
    redaction: RedactionSettings,
) -> dg.MaterializeResult:
    livekit.require_configured()
    replay_agent.check_apart_from(recordings_bucket.bucket_name)
    replay_agent.ensure_local_bucket()
    settings = config.settings()
    ids, selection = selected_call_ids(config, recordings_bucket)
    context.log.info("replaying %s with %s", selection, settings.changed() or "the agent's own settings")

    planned = [_plan(call_id, recordings_bucket, redaction) for call_id in ids]
    rows: dict[str, CallComparison] = {p.call_id: p for p in planned if isinstance(p, CallComparison)}
    # one worker per persona: a worker answers every inbound call with one persona
    groups: dict[str | None, list[_Planned]] = {}
    for p in planned:
        if isinstance(p, _Planned):
            groups.setdefault(settings.persona or p.original.persona, []).append(p)
    line = LiveKitLine(livekit.url, livekit.api_key, livekit.api_secret)
    with tempfile.TemporaryDirectory(prefix="replay-") as log_dir:
        for n, (persona, group) in enumerate(groups.items()):
            group_settings = settings.model_copy(update={"persona": persona})
            agent_name = f"replay-{context.run_id[:8]}-{n}"
            rows.update(
                _replay_group(
                    group, group_settings, replay_agent, line, redaction, agent_name, Path(log_dir), context.log
                )
            )

    ordered = [rows[call_id] for call_id in ids]
    summary = summarize(ordered)
    result = ReplayResult(
        replay_id=context.run_id,
        created_at=datetime.now(UTC),
        selection=selection,
        settings=settings,
        summary=summary,
        rows=ordered,
    )
    path = write_result(recordings_bucket.recordings, result)
    metadata = {
        **{k: v for k, v in summary.model_dump().items() if v is not None},
        "settings_changed": dg.MetadataValue.json(settings.changed()),
        "comparison": dg.MetadataValue.path(recordings_bucket.uri(path)),
        "browser_page": dg.MetadataValue.text(f"/replays/{context.run_id}"),
        "rows": dg.MetadataValue.md(_rows_table(ordered)),
    }
    failures = [r.call_id for r in ordered if r.status is ReplayStatus.FAILED]
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=EVERY_CALL_REPLAYED,
                passed=not failures,
                metadata={"failed": len(failures), "failed_calls": dg.MetadataValue.json(failures[:50])},
            )
        ],
    )


replay_job = dg.define_asset_job(
    "call_replay",
    selection=[call_replays],
    description="Replay recorded calls through the agent with changed settings (config: the calls and the settings)",
)
