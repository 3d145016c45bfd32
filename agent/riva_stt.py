"""livekit-plugins-nvidia's STT, with Riva's failures surfaced to the AgentSession.

The plugin (1.8.9) runs Riva's streaming recognition in a thread and, when the gRPC stream
fails (Riva down, restarting, or not serving the requested model), logs "Error in NVIDIA
recognition thread" and stops: its stream keeps taking audio and never raises, so the session
gets no ``error`` event and the agent goes deaf on a live call. Here the stream ends with the
failure as livekit-agents' ``APIConnectionError`` (UNAVAILABLE, DEADLINE_EXCEEDED: retried by
the framework's connect options) or ``APIStatusError`` (anything else, e.g. an unknown model:
not retried), so the session's error path (agent/stt_failure.py) runs.
"""

from __future__ import annotations

import asyncio
import queue
import threading

import grpc
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError, stt
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given
from livekit.plugins import nvidia
from livekit.plugins.nvidia import stt as nvidia_stt

_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)


def api_error(exc: BaseException) -> APIConnectionError | APIStatusError:
    """The livekit-agents error for a failure of Riva's stream: code and status only, no details
    (Riva's details can quote the request)."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        code = exc.code()
        if code in _TRANSIENT:
            return APIConnectionError(f"Riva streaming recognition: {code.name}")
        return APIStatusError(f"Riva streaming recognition: {code.name}", status_code=code.value[0], retryable=False)
    return APIConnectionError(f"Riva streaming recognition: {type(exc).__name__}")


class RivaSpeechStream(nvidia_stt.SpeechStream):
    async def _run(self) -> None:
        # fresh per attempt: the framework calls _run again on a retry
        self._audio_queue = queue.Queue()
        self._done_fut = asyncio.get_running_loop().create_future()
        self._failure: BaseException | None = None
        thread = threading.Thread(
            target=self._recognition_worker, args=(self._create_streaming_config(),), name="riva-asr", daemon=True
        )
        thread.start()
        collect = asyncio.ensure_future(self._collect_audio())
        try:
            # the audio ends (flush, close) or Riva's stream does: whichever comes first
            await asyncio.wait({collect, self._done_fut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._audio_queue.put(None)
            if not collect.done():
                collect.cancel()
            await asyncio.gather(collect, return_exceptions=True)
            await self._done_fut
        if self._failure is not None:
            raise api_error(self._failure) from self._failure

    def _recognition_worker(self, config) -> None:  # noqa: ANN001
        try:
            for response in self._asr_service.streaming_response_generator(self._audio_chunk_generator(), config):
                self._handle_response(response)
        except Exception as exc:  # noqa: BLE001 - handed to _run, which raises it on the event loop
            self._failure = exc
        finally:
            self._event_loop.call_soon_threadsafe(self._done_fut.set_result, None)


class RivaSTT(nvidia.STT):
    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        lang = nvidia_stt.LanguageCode(language) if is_given(language) else self._opts.language_code
        return RivaSpeechStream(stt=self, conn_options=conn_options, language=lang)
