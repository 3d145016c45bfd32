"""Talk to the agent from a browser on the local stack: a page using livekit-client (npm), served
on 127.0.0.1. Like devstack/phone_line.py it stands in for livekit-sip: the page joins as a caller
of kind SIP in a room named by the rollout's dispatch rule, and the agent answers it as a phone
call. The microphone and speaker are the browser's own, over WebRTC through livekit-server.

    python -m devstack.talk_server --port 3002      # started by the local stack
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from devstack.livekit import DEV_API_KEY, DEV_API_SECRET
from devstack.phone_line import caller_token, dispatch_rule_route, individual_room_name

HERE = Path(__file__).resolve().parent / "talk"
CLIENT_JS = HERE / "node_modules" / "livekit-client" / "dist" / "livekit-client.umd.js"


def create_app(livekit_url: str, api_key: str, api_secret: str, line_number: str) -> FastAPI:
    app = FastAPI(title="Talk to the agent (local stack)")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (HERE / "index.html").read_text()

    @app.get("/livekit-client.umd.js")
    def client_js() -> FileResponse:
        if not CLIENT_JS.exists():
            raise HTTPException(503, "livekit-client is not installed: run scripts/setup.sh (npm ci in devstack/talk)")
        return FileResponse(CLIENT_JS, media_type="text/javascript")

    @app.post("/call")
    async def call(caller: str = "+14155550142") -> dict[str, str]:
        """A caller's token for a new room, routed by the server's dispatch rule."""
        try:
            room_prefix, agent_name = await dispatch_rule_route(livekit_url, api_key, api_secret)
        except LookupError as exc:
            raise HTTPException(409, str(exc)) from None
        room = individual_room_name(room_prefix, caller)
        token = caller_token(api_key, api_secret, room=room, caller_number=caller, trunk_number=line_number, agent_name=agent_name)
        return {"url": livekit_url, "token": token, "room": room}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3002)
    args = parser.parse_args()
    app = create_app(
        os.environ.get("LIVEKIT_URL", "ws://127.0.0.1:7880"),
        os.environ.get("LIVEKIT_API_KEY", DEV_API_KEY),
        os.environ.get("LIVEKIT_API_SECRET", DEV_API_SECRET),
        os.environ.get("CALLCENTER_LOCAL_PHONE_NUMBER", "+14155550100"),
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
