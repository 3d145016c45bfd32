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
