"""OpenAI-compatible speech server for the call-center agent (`POST /v1/audio/speech`)."""
