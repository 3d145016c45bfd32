"""The Riva ASR models the call center uses: the one home of their names.

The agent streams each call to ``STREAMING_MODEL``; the post-call pipeline sends recordings to
``OFFLINE_MODEL``; the rollout's health gate asks Riva for both by these names, and the model
repository's init container (manifests/base/riva-stt.yaml) deploys the RMIRs named here. A
Riva model's served name is fixed by its RMIR, so a name and its RMIR change together, with
the Riva image tag (manifests/base/kustomization.yaml) in ``RIVA_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass

RIVA_VERSION = "2.17.0"  # nvcr.io/nvidia/riva/riva-speech, and the RMIRs' NGC version
LANGUAGE_CODE = "en-US"


@dataclass(frozen=True)
class RivaModel:
    name: str  # what Riva serves it as (RecognitionConfig.model)
    rmir: str  # the NGC RMIR riva-deploy builds it from (version: RIVA_VERSION)

    @property
    def ngc_path(self) -> str:
        return f"nvidia/riva/{self.rmir}:{RIVA_VERSION}"


# Parakeet 1.1B, streaming (low latency) for the live call, offline for whole recordings
STREAMING = RivaModel("parakeet-1.1b-en-US-asr-streaming", "rmir_asr_parakeet_1-1b_en_us_str")
OFFLINE = RivaModel("parakeet-1.1b-en-US-asr-offline", "rmir_asr_parakeet_1-1b_en_us_ofl")
STREAMING_MODEL = STREAMING.name
OFFLINE_MODEL = OFFLINE.name
DEPLOYED = (STREAMING, OFFLINE)
