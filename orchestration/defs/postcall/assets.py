"""Post-call assets, one day partition at a time: transcripts -> analyses -> index.

A run processes a batch of calls of one day (the sensor's batch, or every call of the day
for a backfill). Within a partition processing is idempotent: a call already indexed from
the same session-report generation is skipped unless ``reprocess`` is set or it was indexed
without a recording that has landed since; indexing replaces a call's row rather than adding one.
"""

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from google.api_core.exceptions import NotFound
from pydantic import Field, ValidationError

from callcenter.campaign import Campaign, CampaignError
from callcenter.paths import REPORT_FILENAME, day_prefix, parse_object_name
from callcenter.record import AnalysisStatus
from callindex import CallFilter, UnindexedCall, UnindexedState
from callindex.unindexed import REASON_MAX_CHARS
from orchestration.defs.postcall import transcription
from orchestration.defs.postcall.analysis import Analyser, CallLLM, analyse_call
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.channels import ChannelMode
from orchestration.defs.postcall.do_not_call import heard_after_the_call
from orchestration.defs.postcall.do_not_call import write_request as write_do_not_call_request
from orchestration.defs.postcall.partitions import daily_calls
from orchestration.defs.postcall.records import AnalyzedCall, build_record
from orchestration.defs.postcall.resources import CallEmbeddings, CallIndexResource, RedactionSettings
from orchestration.defs.postcall.speech import SpeechToText, is_message_size_error
from orchestration.defs.postcall.transcription import ReportGone, TranscribedCall, transcribe_call, validation_reason
from orchestration.resources.campaigns import CampaignCatalog
from orchestration.resources.storage import RecordingsBucket

GROUP = "postcall"
DOMAIN_TAGS = {"callcenter/domain": "postcall"}
# Transient trouble with the bucket, the STT or the index: retry the step with backoff.
STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
ONE_DAY_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
SPEECH_MIN_FRACTION = 0.005  # share of 30 ms frames with speech below which a channel counts as dead


class CallSelection(dg.Config):
    calls: list[str] = Field(
        default_factory=list,
        description="'<session.json object>#<generation>' keys (the sensor fills this); empty = every call of the day",
    )
    reprocess: bool = Field(False, description="process calls again even if already indexed from the same report")


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble worth a step retry, as opposed to a problem with one call's files."""
    import grpc
    from google.api_core import exceptions as gexc

    if is_message_size_error(exc):  # RESOURCE_EXHAUSTED too, but the same request always is too large
        return False
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return exc.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
    return isinstance(
        exc,
        ConnectionError | TimeoutError | gexc.ServiceUnavailable | gexc.TooManyRequests | gexc.InternalServerError,
    )


def _partition_day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _calls_of_day(bucket: RecordingsBucket, day: date) -> list[CallRef]:
    refs = []
    for blob in bucket.list_prefix(day_prefix(day)):
        parsed = parse_object_name(blob.name)
        if parsed is not None and parsed.name == REPORT_FILENAME:
            refs.append(CallRef(blob.name, int(blob.generation)))
    return refs


def _has_recording(bucket: RecordingsBucket, ref: CallRef) -> bool:
    """A non-empty recording at the call's standard place (an empty one is no better than none)."""
    blob = bucket.bucket.get_blob(ref.audio_object)
    return blob is not None and (blob.size or 0) > 0


def _reader(bucket: RecordingsBucket):
    def read(name: str) -> bytes | None:
        try:
            # a ranged read: an oversized object fails its call without being downloaded whole
            return bucket.read_bytes(name, max_bytes=transcription.MAX_RECORDING_BYTES)
        except NotFound:
            return None

    return read


def _with_reports(calls: dict[str, TranscribedCall], bucket: RecordingsBucket) -> dict[str, TranscribedCall]:
    """The stored transcriptions with their whole session reports read back from the bucket (the
    IO manager keeps them without phone numbers or raw words). A report gone meanwhile leaves its
    call unindexable with the reason, rather than indexed without its facts."""
    read, restored = _reader(bucket), {}
    for call_id, call in calls.items():
        try:
            restored[call_id] = call.with_report(read)
        except (ReportGone, ValidationError) as exc:
            reason = validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)
            restored[call_id] = dataclasses.replace(call, report=None, failure=f"session report unreadable: {reason}")
    return restored


def _check(name: str, failing: dict[str, str], severity=dg.AssetCheckSeverity.ERROR, **extra) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=not failing,
        severity=severity,
        metadata={
            "failing_calls": len(failing),
            "details": dg.MetadataValue.json(dict(list(failing.items())[:50])),
            **extra,
        },
    )


def _channel_modes(calls: dict[str, TranscribedCall]) -> dict[str, int]:
    return dict(Counter(c.channel_mode.value for c in calls.values() if c.channel_mode is not None))


@dg.asset(
    partitions_def=daily_calls,
    group_name=GROUP,
    kinds={"python", "gcs"},
    retry_policy=STEP_RETRY,
    backfill_policy=ONE_DAY_PER_RUN,
    tags={"callcenter/domain": "postcall"},
    check_specs=[
        dg.AssetCheckSpec(
            "recording_present", asset="call_transcripts", description="answered calls have a non-empty recording"
        ),
        dg.AssetCheckSpec(
            "recording_duration_matches_sip",
            asset="call_transcripts",
            description="recording length matches answer-to-hang-up (catches truncated Egress files)",
        ),
        dg.AssetCheckSpec(
            "both_channels_speech", asset="call_transcripts", description="agent and caller channels carry speech"
        ),
        dg.AssetCheckSpec(
            "transcript_non_empty", asset="call_transcripts", description="answered calls have a transcript"
        ),
        dg.AssetCheckSpec(
            "recording_channel_mode",
            asset="call_transcripts",
            description="which channel layout each recording had and how its words were attributed: "
            "dual_channel (as asked of Egress) passes; dual_channel_swapped, mixed_split_by_report and "
            "mono_fallback are named with the reason (Egress did not record the agent's dual-channel request)",
        ),
        dg.AssetCheckSpec(
            "speakers_in_order",
            asset="call_transcripts",
            description="in each recording transcript no reply stands before its prompt, by the live transcript's "
            "turns; metadata: how early the worst turn's first words were placed (seconds)",
        ),
    ],
)
def call_transcripts(
    context: dg.AssetExecutionContext,
    config: CallSelection,
    recordings_bucket: RecordingsBucket,
    speech_to_text: SpeechToText,
    redaction: RedactionSettings,
    call_index_store: CallIndexResource,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Per-channel transcripts with speaker labels and segment times, redacted; keyed by call id."""
    day = _partition_day(context)
    refs = [CallRef.parse(k) for k in config.calls] if config.calls else _calls_of_day(recordings_bucket, day)
    stray = [r.key for r in refs if r.day != day]
    if stray:
        raise dg.Failure(
            description=f"calls outside partition {day}: {stray[:5]}; run them in their own day's partition",
            allow_retries=False,  # a wrong selection stays wrong: no point retrying
        )
    refs = sorted(set(refs))
    if not config.reprocess:
        index = call_index_store.open()
        try:
            indexed = {r: rec for r in refs if (rec := index.get(r.call_id)) is not None}
        finally:
            index.close()
        done = {r for r, rec in indexed.items() if (rec.source_generation or 0) >= r.generation}
        # The agent writes its report after waiting 60 s for Egress: a call indexed without its
        # recording is done only while no recording has landed since.
        late = {r for r in done if indexed[r].recording_path is None and _has_recording(recordings_bucket, r)}
        if late:
            context.log.info("%d call(s) indexed without a recording now have one: transcribing them again", len(late))
        done -= late
        if done:
            context.log.info("skipping %d call(s) already indexed from the same or a newer report", len(done))
        refs = [r for r in refs if r not in done]

    read = _reader(recordings_bucket)
    policy = redaction.policy()
    write_raw = None
    if redaction.keep_raw_transcript:

        def write_raw(name: str, data: bytes) -> None:
            recordings_bucket.write_bytes(name, data, "application/json")

    results: dict[str, TranscribedCall] = {}
    for ref in refs:
        try:
            results[ref.call_id] = transcribe_call(ref, read, speech_to_text, policy, write_raw)
        except Exception as exc:  # one bad call must not block the batch; the reason is kept
            if is_transient(exc):
                raise  # the bucket or the STT service is down: retry the step (RetryPolicy)
            context.log.warning("call %s failed in transcription: %s", ref.call_id, type(exc).__name__)
            results[ref.call_id] = TranscribedCall(ref=ref, failure=f"transcription error: {type(exc).__name__}: {exc}")

    failed = {cid: c.failure for cid, c in results.items() if c.failure}
    yield dg.Output(
        # kept by the IO manager (GCS on GKE) for the next steps and their retries: redacted only
        {cid: c.for_storage() for cid, c in results.items()},
        metadata={
            "calls": len(results),
            "failed_calls": len(failed),
            "stt_seconds": round(sum(c.stt_seconds for c in results.values()), 2),
            "transcription_seconds": round(sum(c.seconds for c in results.values()), 2),
            "redactions": sum(c.redactions for c in results.values()),
            "transcript_sources": dg.MetadataValue.json(dict(Counter(str(c.chosen) for c in results.values()))),
            "channel_modes": dg.MetadataValue.json(_channel_modes(results)),
            "failures": dg.MetadataValue.json(failed),
        },
    )
    answered = {cid: c for cid, c in results.items() if c.expects_recording}
    yield _check(
        "recording_present",
        {
            cid: c.recording_problem or "recording missing"
            for cid, c in answered.items()
            if not c.recording_bytes or (c.recording_problem and c.recording_duration_s is None)
        },
    )
    yield _check(
        "recording_duration_matches_sip",
        {cid: m for cid, c in answered.items() if (m := c.duration_mismatch) or (m := c.recording_problem)},
    )
    yield _check(
        "both_channels_speech",
        {
            cid: f"speech share per channel: {c.channel_speech}"
            for cid, c in answered.items()
            if c.channel_speech and min(c.channel_speech.values(), default=0.0) < SPEECH_MIN_FRACTION
        },
        severity=dg.AssetCheckSeverity.WARN,
    )
    yield _check(
        "transcript_non_empty",
        {cid: c.failure or "no words transcribed" for cid, c in answered.items() if not c.transcript},
    )
    decoded = {cid: c for cid, c in results.items() if c.channel_mode is not None}
    calls_by_mode: dict[str, list[str]] = {}
    for cid, c in sorted(decoded.items()):
        calls_by_mode.setdefault(c.channel_mode.value, []).append(cid)
    # Reasons hold measured figures only (correlations, channel indices): no words of the call.
    yield _check(
        "recording_channel_mode",
        {
            cid: f"{c.channel_mode.value}: {c.channel_reason}"
            for cid, c in decoded.items()
            if c.channel_mode is not ChannelMode.DUAL_CHANNEL
        },
        severity=dg.AssetCheckSeverity.WARN,
        modes=dg.MetadataValue.json(_channel_modes(decoded)),
        calls_by_mode=dg.MetadataValue.json({mode: ids[:50] for mode, ids in calls_by_mode.items()}),
    )
    ordered = {cid: c.speaker_order for cid, c in results.items() if c.speaker_order is not None}
    yield _check(
        "speakers_in_order",
        {
            cid: f"{o.replies_before_prompts} repl(y/ies) before its prompt; first words up to {o.max_early_s:.2f} s early"
            for cid, o in ordered.items()
            if not o.in_order
        },
        severity=dg.AssetCheckSeverity.WARN,
        calls_checked=len(ordered),
        max_early_s=max((o.max_early_s for o in ordered.values()), default=0.0),
    )


def _campaigns_of(calls: dict[str, TranscribedCall], catalog: CampaignCatalog) -> dict[str, Campaign]:
    """The campaigns these calls name; a catalog that cannot be read fails the step (retried later,
    the calls stay requested) rather than analyse campaign calls without their goal and fields."""
    if not any(c.report is not None and c.report.campaign_id for c in calls.values()):
        return {}
    try:
        return {campaign_id: cf.campaign for campaign_id, cf in catalog.load().items()}
    except CampaignError as exc:
        raise dg.Failure(description=f"the campaign catalog cannot be read, so campaign calls wait: {exc}") from None


@dg.asset(
    partitions_def=daily_calls,
    group_name=GROUP,
    kinds={"python", "openai"},
    retry_policy=STEP_RETRY,
    backfill_policy=ONE_DAY_PER_RUN,
    tags={"callcenter/domain": "postcall"},
    check_specs=[
        dg.AssetCheckSpec(
            "analysis_valid",
            asset="call_analyses",
            description="every model's analysis validated (none refused, whether or not the extractive one stood in)",
        )
    ],
)
def call_analyses(
    context: dg.AssetExecutionContext,
    call_transcripts: dict[str, TranscribedCall],
    call_llm: CallLLM,
    redaction: RedactionSettings,
    campaign_catalog: CampaignCatalog,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Analysis per call (summary, disposition, sentiment, intent, actions, goal): the LLM's, validated
    by pydantic, or the extractive analyser's where ``call_llm.analyser`` says so (or where it stands in
    for a refused one); redacted again either way (what is written is stored, indexed and shown to
    analysts, with who wrote it). A campaign call is judged against its campaign's goal and extracted
    fields, from the one campaign catalog dialing reads."""
    policy = redaction.policy()
    extractive_only = call_llm.analyser is Analyser.EXTRACTIVE
    client = None if extractive_only else call_llm.client()
    campaigns = _campaigns_of(call_transcripts, campaign_catalog)
    results: dict[str, AnalyzedCall] = {}
    for call_id, call in call_transcripts.items():
        if not call.transcript or call.report is None:
            results[call_id] = AnalyzedCall(call_id, AnalysisStatus.SKIPPED, error=call.failure or "no transcript")
            continue
        campaign = campaigns.get(call.report.campaign_id or "")
        goal, fields = (campaign.goal, campaign.extracted_fields) if campaign else (None, ())
        # AnalysisFailed here is the LLM service down, not the call's fault: the step fails and is
        # retried later, instead of indexing every call of the batch as "analysis failed".
        results[call_id] = analyse_call(call_llm, call_id, call.transcript, goal, fields, policy, client)
        if results[call_id].error:  # redacted
            context.log.warning("analysis of %s: %s", call_id, results[call_id].error)
    statuses = Counter(a.status.value for a in results.values())
    yield dg.Output(
        results,
        metadata={
            "calls": len(results),
            "statuses": dg.MetadataValue.json(dict(statuses)),
            # who wrote the stored analyses: "llm:<model>", "extractive"
            "analysers": dg.MetadataValue.json(
                dict(Counter(a.analysis.analyser for a in results.values() if a.analysis is not None))
            ),
            "llm_seconds": round(sum(a.seconds for a in results.values()), 2),
            "model": "none (extractive)" if extractive_only else call_llm.model,
            # Calls naming a campaign the catalog no longer holds: analysed without a goal or fields.
            "campaigns_not_in_catalog": dg.MetadataValue.json(
                sorted(
                    {
                        c.report.campaign_id
                        for c in call_transcripts.values()
                        if c.report is not None and c.report.campaign_id and c.report.campaign_id not in campaigns
                    }
                )
            ),
        },
    )
    yield _check(
        "analysis_valid",
        # a model's analysis the extractive one stands in for was refused too
        {
            cid: a.error or ""
            for cid, a in results.items()
            if a.status is AnalysisStatus.FAILED or (a.status is AnalysisStatus.OK and a.error)
        },
        severity=dg.AssetCheckSeverity.WARN,
    )


TRANSCRIPTION_ERROR = "transcription error: "


def not_indexed(call: TranscribedCall, reason: str, now: datetime) -> UnindexedCall:
    """The index's row for a call that could not be indexed: its session report was unreadable
    (missing, not JSON, not a SessionReport: the error types and locations) or processing it
    failed (the error's type only: its message may quote the call)."""
    if reason.startswith(TRANSCRIPTION_ERROR):
        state, reason = UnindexedState.FAILED, ": ".join(reason.split(": ", 2)[:2])
    else:
        state = UnindexedState.UNREADABLE if reason.startswith("session report") else UnindexedState.FAILED
    return UnindexedCall(
        call_id=call.call_id,
        day=call.ref.day,
        state=state,
        reason=reason[:REASON_MAX_CHARS],
        since=now,
        generation=call.ref.generation,
    )


@dg.asset(
    partitions_def=daily_calls,
    group_name=GROUP,
    kinds={"python", "sql"},
    retry_policy=STEP_RETRY,
    backfill_policy=ONE_DAY_PER_RUN,
    tags={"callcenter/domain": "postcall"},
    check_specs=[
        dg.AssetCheckSpec(
            "index_rows_match_processed_calls",
            asset="call_index",
            description="every processed call has exactly one index row, from this run's report generation or a newer one",
        ),
        dg.AssetCheckSpec(
            "session_reports_indexable",
            asset="call_index",
            description="every completed call's session report could be read and indexed (else: which, and why)",
        ),
    ],
)
def call_index(
    context: dg.AssetExecutionContext,
    call_transcripts: dict[str, TranscribedCall],
    call_analyses: dict[str, AnalyzedCall],
    call_embeddings: CallEmbeddings,
    call_index_store: CallIndexResource,
    recordings_bucket: RecordingsBucket,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The searchable call index: metadata, redacted transcript, analysis, latency, recording URI, embedding."""
    now = datetime.now(UTC)
    records = []
    unindexable = {}
    call_transcripts = _with_reports(call_transcripts, recordings_bucket)
    heard_after: Counter[str] = Counter()
    for call_id, call in call_transcripts.items():
        if call.report is None:
            unindexable[call_id] = call.failure or "no session report"
            continue
        uri = recordings_bucket.uri(call.recording_object) if call.recording_object else None
        record = build_record(call, call_analyses.get(call_id), uri, now)
        # A request the live call missed: written as the agent writes its own, so dialing
        # suppresses the number within one tick; the index row says so.
        if heard := heard_after_the_call(call, call_analyses.get(call_id)):
            write_do_not_call_request(recordings_bucket.recordings, call, heard, now)
            heard_after[heard.value] += 1
            record = record.model_copy(update={"do_not_call_requested": True})
        records.append(record)
    started = time.perf_counter()
    vectors = call_embeddings.embedder().embed([r.embedding_text() for r in records])
    embed_s = time.perf_counter() - started
    index = call_index_store.open()
    try:
        started = time.perf_counter()
        index.upsert_many(zip(records, vectors, strict=True))  # one transaction for the batch
        index_s = time.perf_counter() - started
        # The calls it could not index, with the reason, where the browser lists them.
        index.mark_unindexed(not_indexed(call_transcripts[cid], why, now) for cid, why in unindexable.items())
        mismatched = {}
        for record in records:
            stored = index.get(record.call_id)
            if stored is None:
                mismatched[record.call_id] = "missing from the index"
            elif (stored.source_generation or 0) < (record.source_generation or 0):
                mismatched[record.call_id] = "stale generation"
            # A newer generation stored meanwhile (its own run finished first) is no mismatch.
        day = _partition_day(context)
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        day_rows = index.count(CallFilter(started_from=day_start, started_to=day_start + timedelta(days=1)))
    finally:
        index.close()
    yield dg.Output(
        {"indexed": [r.call_id for r in records], "unindexable": unindexable},
        metadata={
            "indexed_calls": len(records),
            "unindexable_calls": len(unindexable),
            # do-not-call requests post-call heard that the live call did not record, by how
            "do_not_call_heard_after_the_call": dg.MetadataValue.json(dict(heard_after)),
            "rows_for_day": day_rows,
            "embedding_seconds": round(embed_s, 3),
            "index_seconds": round(index_s, 3),
            "index": call_index_store.resolved_url().split("@")[-1],  # never the DSN's credentials
        },
    )
    yield _check("index_rows_match_processed_calls", mismatched, processed_calls=len(records), rows_for_day=day_rows)
    # A call with no readable report has no row to show an analyst: it must not pass unseen.
    yield _check("session_reports_indexable", unindexable, severity=dg.AssetCheckSeverity.WARN)
