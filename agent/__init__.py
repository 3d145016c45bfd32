"""The call center's LiveKit voice agent: answers inbound PSTN calls and places outbound ones."""
