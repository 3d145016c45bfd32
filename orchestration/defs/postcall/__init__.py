"""The postcall domain: bucket sensor -> transcripts -> redaction -> analyses -> call index (+ checks, views).

Exposes ``defs`` and ``resources(deployment)``. Local resources run everything on this
machine (faster-whisper, the extractive analyser in place of llama.cpp's SmolLM2, SQLite); gke uses
Riva, vLLM and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_gcp import GCSPickleIOManager, GCSResource

from orchestration.defs.postcall.analysis import Analyser, CallLLM, StructuredOutput
from orchestration.defs.postcall.assets import call_analyses, call_index, call_transcripts
from orchestration.defs.postcall.pending import requested_calls_indexed
from orchestration.defs.postcall.resources import CallEmbeddings, CallIndexResource, RedactionSettings
from orchestration.defs.postcall.sensors import (
    call_recordings_sensor,
    failed_batches_sensor,
    late_recordings_sensor,
    pending_calls_job,
    postcall_job,
    postcall_pending_schedule,
    postcall_reconcile_schedule,
    postcall_views_job,
    postcall_views_schedule,
)
from orchestration.defs.postcall.speech import RivaSpeechToText, WhisperSpeechToText
from orchestration.defs.postcall.views import VIEW_ASSETS
from orchestration.deployment import Deployment

# where the GKE code location's IO manager keeps step outputs, in the recordings bucket
IO_PREFIX = "dagster-io"

defs = dg.Definitions(
    assets=[call_transcripts, call_analyses, call_index, *VIEW_ASSETS],
    asset_checks=[requested_calls_indexed],
    jobs=[postcall_job, postcall_views_job, pending_calls_job],
    sensors=[call_recordings_sensor, late_recordings_sensor, failed_batches_sensor],
    schedules=[postcall_views_schedule, postcall_reconcile_schedule, postcall_pending_schedule],
)


def resources(deployment: Deployment) -> dict[str, Any]:
    match deployment:
        case Deployment.LOCAL:
            return {
                "speech_to_text": WhisperSpeechToText(),
                "call_llm": CallLLM(
                    base_url=dg.EnvVar("CALLCENTER_LLM_BASE_URL"),
                    model=dg.EnvVar("CALLCENTER_LLM_MODEL"),  # the llama.cpp server's --model_alias
                    structured_output=StructuredOutput.JSON_OBJECT_SCHEMA,
                    max_tokens=400,  # SmolLM2 on CPU: bound the time a rambling answer can take
                    # SmolLM2-135M's yes/no on a do-not-call request is noise: the rules read it locally
                    reads_do_not_call=False,
                    # Nor can it write an analysis an analyst can use (28% valid, sentiment and follow-up
                    # below always-the-most-common-answer: docs/benchmarks.md): the extractive analyser
                    # writes every local analysis, labelled 'extractive'. To try a model here, set
                    # analyser=Analyser.LLM; a refused analysis then falls back to the extractive one.
                    analyser=Analyser.EXTRACTIVE,
                    extractive_fallback=True,
                ),
                "call_embeddings": CallEmbeddings(),
                "call_index_store": CallIndexResource(data_dir=dg.EnvVar("CALLCENTER_DATA_DIR")),
                "redaction": RedactionSettings(),
            }
        case Deployment.GKE:
            return {
                "speech_to_text": RivaSpeechToText(uri=dg.EnvVar("RIVA_URI")),
                "call_llm": CallLLM(
                    base_url=dg.EnvVar("CALLCENTER_LLM_BASE_URL"),
                    model=dg.EnvVar("CALLCENTER_LLM_MODEL"),
                    structured_output=StructuredOutput.JSON_SCHEMA,
                ),
                "call_embeddings": CallEmbeddings(),
                "call_index_store": CallIndexResource(url=dg.EnvVar("CALLCENTER_CALL_INDEX_DSN")),
                "redaction": RedactionSettings(),
                # Step outputs (call_transcripts, call_analyses, the views) outlive the run pod that
                # wrote them, so a retried step or a re-executed run finds its inputs; what they hold
                # is redacted (TranscribedCall.for_storage). Only post-call passes values between
                # steps: the other domains' assets return MaterializeResult.
                "io_manager": GCSPickleIOManager(
                    gcs=GCSResource(project=dg.EnvVar("GOOGLE_CLOUD_PROJECT")),
                    gcs_bucket=dg.EnvVar("CALLCENTER_RECORDINGS_BUCKET"),
                    gcs_prefix=IO_PREFIX,
                ),
            }
    raise ValueError(f"unknown deployment {deployment!r}")
