"""Post-call step outputs on GKE live in GCS, redacted, so a retry in a fresh pod finds them (issue 16, item 7).

Two runs on two separate Dagster instances stand for the run pod that transcribed and the pod
that retries the later steps: nothing is shared but the bucket (the GCS emulator, through
dagster-gcp's GCSPickleIOManager as the gke code location configures it). What the IO manager
stored is read back raw and searched for the call's phone numbers and the card number spoken in it.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster_gcp import GCSPickleIOManager, GCSResource

from callindex import open_call_index
from doubles.llm_server import ScriptedLLM
from orchestration.defs import postcall
from orchestration.defs.postcall import call_analyses, call_index, call_transcripts
from orchestration.defs.postcall.resources import CallIndexResource
from orchestration.defs.postcall.speech import SpeechSegment, SpeechToText
from orchestration.deployment import Deployment
from tests.postcall.conftest import postcall_resources, upload_call

pytestmark = [pytest.mark.xdist_group("postcall"), pytest.mark.timeout(600)]

DAY = "2026-11-24"
CARD_DIGITS = ("4111", "one one one one")


def test_the_gke_code_location_keeps_step_outputs_in_the_recordings_bucket() -> None:
    io = postcall.resources(Deployment.GKE)["io_manager"]
    assert isinstance(io, GCSPickleIOManager)
    assert io.gcs_prefix == postcall.IO_PREFIX
    assert io.gcs_bucket.env_var_name == "CALLCENTER_RECORDINGS_BUCKET"  # the bucket the Dagster pods can write
    assert "io_manager" not in postcall.resources(Deployment.LOCAL)  # locally: Dagster's filesystem default


class CardReadingSpeechToText(SpeechToText):
    """Hears a card number in every chunk: what the recording's transcript holds before redaction."""

    def transcribe(self, samples):  # noqa: ANN001, ANN201
        words = "my card number is 4111 1111 1111 1111 " + " ".join(["thanks"] * 100)
        return [SpeechSegment(0.2, 1.5, words)] if samples.size else []


@pytest.fixture
def scripted_llm():
    llm = ScriptedLLM().start()
    try:
        yield llm
    finally:
        llm.stop()


def test_a_retry_in_a_new_pod_reads_redacted_transcripts_from_gcs(
    bucket, tmp_path, render_demo_call, scripted_llm, gcs_emulator, monkeypatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)  # GCSResource's client, as on GKE but local
    demo = render_demo_call("billing_question", datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    report = demo.report.model_copy(update={"from_number": "+14155550142", "to_number": "+14155550100"})
    call = type(demo)(report, demo.audio_object, demo.report_object, demo.audio)
    upload_call(bucket, call)
    assert any(d in " ".join(t.text for t in call.report.turns).lower() for d in CARD_DIGITS)

    resources = postcall_resources(
        bucket,
        CardReadingSpeechToText(),
        scripted_llm.base_url,
        tmp_path,
        io_manager=GCSPickleIOManager(
            gcs=GCSResource(project="local"), gcs_bucket=bucket.bucket_name, gcs_prefix=postcall.IO_PREFIX
        ),
    )
    assets = [call_transcripts, call_analyses, call_index]
    config = {"ops": {"call_transcripts": {"config": {"calls": []}}}}

    # the pod that transcribed (its run then failed later on, say)
    first = dg.materialize(
        assets,
        selection=[call_transcripts],
        partition_key=DAY,
        resources=resources,
        run_config=config,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert first.success
    stored = [b for b in bucket.list_prefix(postcall.IO_PREFIX + "/") if "call_transcripts" in b.name]
    assert len(stored) == 1
    raw = stored[0].download_as_bytes()
    text = repr(pickle.loads(raw)).lower()
    for secret in ("+14155550142", "4155550142", *CARD_DIGITS):
        assert secret not in text and secret.encode() not in raw, f"{secret!r} reached the IO manager's storage"
    assert "[redacted card]" in text  # the redacted transcript is what is kept

    # the retry: another pod, another instance, no local disk in common; only GCS
    retry = dg.materialize(
        assets,
        selection=[call_analyses, call_index],
        partition_key=DAY,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert retry.success
    assert retry.output_for_node("call_index")["indexed"] == [call.report.call_id]
    index = open_call_index(CallIndexResource(data_dir=str(tmp_path)).resolved_url())
    try:
        row = index.get(call.report.call_id)
        # the facts the IO manager did not keep come back from the session report itself
        assert (row.from_number, row.to_number) == ("+14155550142", "+14155550100")
        assert not any(d in row.model_dump_json().lower() for d in CARD_DIGITS)
    finally:
        index.close()
