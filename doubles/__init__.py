"""Stand-ins for what the call center talks to, speaking the real wire formats on loopback:
LiveKit's Twirp API (livekit_server), an OpenAI-compatible LLM (llm_server) and tiny
randomly initialised Chatterbox models (tiny_chatterbox).

Shared by tests/ and bench/; nothing that ships imports them. They live outside tests/ so
that a bench never depends on the test suite (tests/test_imports_of_tests.py keeps it so).
"""
