"""The production STT path (Riva offline recognition) against a gRPC double speaking Riva's own protos.

No Riva server can run here (it needs an NVIDIA GPU); the double implements
``RivaSpeechRecognition/Recognize`` with the real riva-client stubs, checks the request the
way Riva would, and answers with word time offsets in milliseconds.
"""

from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
import pytest
from riva.client.proto import riva_asr_pb2, riva_asr_pb2_grpc, riva_audio_pb2

from orchestration.defs.postcall.audio import STT_RATE
from orchestration.defs.postcall.speech import RivaSpeechToText, SpeechSegment
from tests.conftest import free_port

pytestmark = pytest.mark.xdist_group("postcall")


class RivaDouble(riva_asr_pb2_grpc.RivaSpeechRecognitionServicer):
    def __init__(self) -> None:
        self.requests: list[riva_asr_pb2.RecognizeRequest] = []

    def Recognize(self, request, context):  # noqa: N802 - the gRPC method name
        self.requests.append(request)
        cfg = request.config
        if cfg.encoding != riva_audio_pb2.AudioEncoding.LINEAR_PCM or cfg.sample_rate_hertz != STT_RATE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected LINEAR_PCM at 16 kHz")
        seconds = len(request.audio) / 2 / STT_RATE
        words = [
            riva_asr_pb2.WordInfo(word="hello", start_time=200, end_time=600),
            riva_asr_pb2.WordInfo(word="there", start_time=650, end_time=int(seconds * 1000)),
        ]
        alt = riva_asr_pb2.SpeechRecognitionAlternative(transcript="Hello there. ", words=words, confidence=0.9)
        empty = riva_asr_pb2.SpeechRecognitionAlternative(transcript="  ")
        return riva_asr_pb2.RecognizeResponse(
            results=[
                riva_asr_pb2.SpeechRecognitionResult(alternatives=[alt], audio_processed=seconds),
                riva_asr_pb2.SpeechRecognitionResult(alternatives=[empty]),
            ]
        )


@pytest.fixture
def riva() -> tuple[str, RivaDouble]:
    double = RivaDouble()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    riva_asr_pb2_grpc.add_RivaSpeechRecognitionServicer_to_server(double, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield f"127.0.0.1:{port}", double
    server.stop(grace=None)


def test_riva_offline_recognition_request_and_segments(riva) -> None:
    uri, double = riva
    samples = np.full(STT_RATE * 2, 0.25, dtype=np.float32)  # 2 s
    segments = RivaSpeechToText(uri=uri, language_code="en-US").transcribe(samples)
    assert segments == [SpeechSegment(0.2, 2.0, "Hello there.")]
    (request,) = double.requests
    assert request.config.enable_word_time_offsets and request.config.audio_channel_count == 1
    assert request.config.language_code == "en-US"
    assert len(request.audio) == samples.size * 2  # 16-bit mono PCM
    assert int.from_bytes(request.audio[:2], "little", signed=True) == int(0.25 * 32767)


def test_riva_unreachable_raises_for_the_step_retry() -> None:
    with pytest.raises(grpc.RpcError):
        RivaSpeechToText(uri=f"127.0.0.1:{free_port()}", timeout_s=2).transcribe(np.zeros(1600, np.float32))


def test_an_stt_outage_is_transient_not_a_call_failure() -> None:
    from orchestration.defs.postcall.assets import is_transient

    with pytest.raises(grpc.RpcError) as outage:
        RivaSpeechToText(uri=f"127.0.0.1:{free_port()}", timeout_s=2).transcribe(np.zeros(1600, np.float32))
    assert is_transient(outage.value)
    assert not is_transient(ValueError("bad file"))


# --- the gRPC message limit against the longest call (issue 16, item 7) ---------------------------
def test_the_longest_call_does_not_fit_one_request_and_the_chunks_do() -> None:
    """The arithmetic: 16-bit PCM at 16 kHz is 32,000 bytes a second; gRPC's default limit is 4 MiB."""
    from callcenter.dispatch import MAX_CALL_DURATION_S
    from orchestration.defs.postcall.speech import GRPC_DEFAULT_MAX_MESSAGE, PCM_BYTES_PER_S
    from orchestration.defs.postcall.transcription import MAX_RECORDING_S, STT_CHUNK_S

    assert PCM_BYTES_PER_S == 32_000 and GRPC_DEFAULT_MAX_MESSAGE == 4_194_304
    whole_call = MAX_RECORDING_S * PCM_BYTES_PER_S  # 1,920 s: 61.4 MB in one request
    assert whole_call > 14 * GRPC_DEFAULT_MAX_MESSAGE
    stt = RivaSpeechToText(uri="unused:1")
    assert 129 < stt.max_chunk_s < 130  # (4 MiB - 64 KiB) / 32 kB/s
    assert STT_CHUNK_S * PCM_BYTES_PER_S == 3_840_000 < GRPC_DEFAULT_MAX_MESSAGE  # 120 s chunks fit
    assert MAX_RECORDING_S >= MAX_CALL_DURATION_S


def test_a_long_track_reaches_a_default_limit_riva_in_requests_under_4_mib(riva) -> None:
    from orchestration.defs.postcall.speech import GRPC_DEFAULT_MAX_MESSAGE, ChunkedTranscription
    from orchestration.defs.postcall.transcription import STT_CHUNK_S

    uri, double = riva  # a gRPC server with the default 4 MiB receive limit, as Riva keeps
    stt = RivaSpeechToText(uri=uri)
    chunked = ChunkedTranscription(stt, min(STT_CHUNK_S, stt.max_chunk_s))
    rng = np.random.default_rng(0)
    for _ in range(6):  # six minutes of one speaker, a minute at a time as the reader gives it
        chunked.add((rng.standard_normal(60 * STT_RATE) * 0.05).astype(np.float32))
    segments = chunked.finish()
    # cut at the quietest 50 ms of each chunk's last 15 s: three or four requests of at most 120 s
    assert 3 <= len(double.requests) <= 4 and len(segments) == len(double.requests)
    assert max(len(r.audio) for r in double.requests) <= STT_CHUNK_S * STT_RATE * 2
    assert all(len(r.SerializeToString()) < GRPC_DEFAULT_MAX_MESSAGE for r in double.requests)
    assert sum(len(r.audio) for r in double.requests) == 6 * 60 * STT_RATE * 2  # every sample sent once


def test_a_request_over_the_limit_fails_its_call_and_is_not_retried(riva) -> None:
    from orchestration.defs.postcall.assets import is_transient
    from orchestration.defs.postcall.speech import SpeechRequestTooLarge

    uri, double = riva
    three_minutes = np.zeros(180 * STT_RATE, np.float32)  # 5.76 MB of PCM
    # the client refuses before sending ...
    with pytest.raises(SpeechRequestTooLarge, match="at most 129 s a request"):
        RivaSpeechToText(uri=uri).transcribe(three_minutes)
    # ... and a client told of a larger limit than the server keeps gets gRPC's RESOURCE_EXHAUSTED,
    # which for a rate limit is transient but for a message size never is
    with pytest.raises(SpeechRequestTooLarge) as refused:
        RivaSpeechToText(uri=uri, max_message_bytes=64 * 2**20).transcribe(three_minutes)
    assert not is_transient(refused.value)
    assert double.requests == []
    channel = grpc.insecure_channel(uri, options=[("grpc.max_send_message_length", 64 * 2**20)])
    try:
        stub = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel)
        with pytest.raises(grpc.RpcError) as raw:
            stub.Recognize(riva_asr_pb2.RecognizeRequest(audio=b"\0" * (5 * 2**20)), timeout=10)
    finally:
        channel.close()
    assert raw.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not is_transient(raw.value)
