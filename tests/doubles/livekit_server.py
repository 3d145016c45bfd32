"""The LiveKit Twirp double lives in doubles/livekit_server.py (shared with bench/). This name
stays while tests/conftest.py and tests/rollout/conftest.py import it from here."""

from doubles.livekit_server import LiveKitDouble

__all__ = ["LiveKitDouble"]
