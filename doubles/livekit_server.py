"""A protocol-level double of livekit-server's Twirp API, for tests/ and bench/; never a backend.

It speaks the real wire format to the real ``livekit-api`` client: POST
``/twirp/livekit.<Service>/<Method>`` with ``application/protobuf`` bodies, bearer JWTs
signed HS256 with the API secret, and Twirp JSON errors (``{"code","msg","meta"}``). Each
request's JWT is verified (issuer = API key, signature, expiry) and its grants are checked
against what the method needs, so a client that signs with the wrong secret or grant fails
here as it would on a real server.

State (SIP trunks, dispatch rules, rooms, agent dispatches, SIP participants, egresses) is
kept in memory with livekit-server's semantics where tests rely on them. Tests may replace
any method's behaviour with ``on(service, method, handler)`` and script SIP outcomes per
phone number with ``sip_outcomes``.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message
from livekit.protocol import agent_dispatch, egress, models, room, sip

_PROTO_MODULES = (sip, agent_dispatch, room, egress)


class TwirpFailure(Exception):
    """Raise from a handler to answer with a Twirp error."""

    def __init__(self, code: str, msg: str, status: int, meta: dict[str, str] | None = None):
        super().__init__(msg)
        self.code, self.msg, self.status, self.meta = code, msg, status, meta or {}


def sip_failure(status_code: int, status: str) -> TwirpFailure:
    """The error livekit-server returns when an outbound SIP call fails with a SIP status."""
    return TwirpFailure(
        "unavailable" if status_code >= 500 else "failed_precondition",
        f"twirp error unknown: could not dial: {status_code} {status}",
        503 if status_code >= 500 else 412,
        {"sip_status_code": str(status_code), "sip_status": status},
    )


@dataclass
class RecordedRequest:
    service: str
    method: str
    message: Message
    claims: dict[str, Any]
    request_id: str | None


Handler = Callable[[Message, dict[str, Any]], Message]


def _needs(method: str, service: str) -> Callable[[dict[str, Any], Message], str | None]:
    """Returns a checker of the JWT grants this method needs, as livekit-server checks them."""

    def video(claims: dict[str, Any]) -> dict[str, Any]:
        return claims.get("video") or {}

    def check(claims: dict[str, Any], msg: Message) -> str | None:
        sip_grants = claims.get("sip") or {}
        if service == "SIP":
            if method in ("CreateSIPParticipant",):
                return None if sip_grants.get("call") else "sip.call grant required"
            if method == "TransferSIPParticipant":
                if not sip_grants.get("call"):
                    return "sip.call grant required"
                if not video(claims).get("roomAdmin") or video(claims).get("room") != msg.room_name:
                    return "roomAdmin grant for the room required"
                return None
            return None if sip_grants.get("admin") else "sip.admin grant required"
        if service == "AgentDispatchService":
            room_name = getattr(msg, "room", "")
            v = video(claims)
            if not v.get("roomAdmin") or v.get("room") != room_name:
                return "roomAdmin grant for the room required"
            return None
        if service == "RoomService":
            v = video(claims)
            if method in ("CreateRoom", "DeleteRoom"):
                return None if v.get("roomCreate") else "roomCreate grant required"
            if method == "ListRooms":
                return None if v.get("roomList") else "roomList grant required"
            return None if v.get("roomAdmin") else "roomAdmin grant required"
        if service == "Egress":
            return None if video(claims).get("roomRecord") else "roomRecord grant required"
        return "unknown service"

    return check


@dataclass
class LiveKitDouble:
    api_key: str = "APItestkey"
    api_secret: str = "test-secret-that-is-long-enough-for-hs256-0123456789"
    host: str = "127.0.0.1"
    port: int = 0

    requests: list[RecordedRequest] = field(default_factory=list)
    inbound_trunks: dict[str, sip.SIPInboundTrunkInfo] = field(default_factory=dict)
    outbound_trunks: dict[str, sip.SIPOutboundTrunkInfo] = field(default_factory=dict)
    dispatch_rules: dict[str, sip.SIPDispatchRuleInfo] = field(default_factory=dict)
    rooms: dict[str, models.Room] = field(default_factory=dict)
    dispatches: dict[str, list[agent_dispatch.AgentDispatch]] = field(default_factory=dict)
    sip_participants: list[sip.CreateSIPParticipantRequest] = field(default_factory=list)
    egresses: dict[str, egress.EgressInfo] = field(default_factory=dict)
    # phone number -> TwirpFailure to answer CreateSIPParticipant with (busy, no answer, ...)
    sip_outcomes: dict[str, TwirpFailure] = field(default_factory=dict)

    _handlers: dict[tuple[str, str], Handler] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LiveKitDouble:
        if not self.port:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_post("/twirp/livekit.{service}/{method}", self._dispatch)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, self.host, self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="livekit-double", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("LiveKit double did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> LiveKitDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls -----------------------------------------------------------------
    def on(self, service: str, method: str, handler: Handler) -> None:
        """Replace a method's behaviour: handler(request, jwt_claims) -> response or raise TwirpFailure."""
        self._handlers[(service, method)] = handler

    def calls(self, service: str, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.service == service and r.method == method]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # --- wire ---------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.Response:
        service, method = request.match_info["service"], request.match_info["method"]
        svc_desc = None
        for mod in _PROTO_MODULES:
            svc_desc = mod.DESCRIPTOR.services_by_name.get(service)
            if svc_desc:
                break
        if svc_desc is None or method not in svc_desc.methods_by_name:
            return _error(TwirpFailure("bad_route", f"no handler for livekit.{service}/{method}", 404))
        m_desc = svc_desc.methods_by_name[method]
        if request.content_type != "application/protobuf":
            return _error(TwirpFailure("malformed", f"unexpected content type {request.content_type}", 400))
        try:
            msg = message_factory.GetMessageClass(m_desc.input_type).FromString(await request.read())
        except DecodeError as e:
            return _error(TwirpFailure("malformed", f"bad protobuf body: {e}", 400))

        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _error(TwirpFailure("unauthenticated", "missing bearer token", 401))
        try:
            claims = jwt.decode(auth[7:], self.api_secret, algorithms=["HS256"], options={"require": ["exp", "iss"]})
        except jwt.PyJWTError as e:
            return _error(TwirpFailure("unauthenticated", f"invalid token: {e}", 401))
        if claims.get("iss") != self.api_key:
            return _error(TwirpFailure("unauthenticated", "unknown API key", 401))
        denied = _needs(method, service)(claims, msg)
        if denied:
            return _error(TwirpFailure("permission_denied", denied, 403))

        with self._lock:
            self.requests.append(
                RecordedRequest(service, method, msg, claims, request.headers.get("X-Livekit-Request-Id"))
            )
        handler = self._handlers.get((service, method)) or getattr(self, f"_h_{service}_{method}", None)
        if handler is None:
            return _error(TwirpFailure("unimplemented", f"double does not implement {service}/{method}", 501))
        try:
            with self._lock:
                resp = handler(msg, claims)
        except TwirpFailure as f:
            return _error(f)
        expected = message_factory.GetMessageClass(m_desc.output_type)
        if not isinstance(resp, expected):
            raise TypeError(f"handler for {service}/{method} returned {type(resp).__name__}, not {expected.__name__}")
        return web.Response(body=resp.SerializeToString(), content_type="application/protobuf")

    # --- default behaviour (livekit-server semantics the tests rely on) ------------------
    def _insert(self, table: dict[str, Message], info: Message, id_field: str, prefix: str) -> Message:
        setattr(info, id_field, self.new_id(prefix))
        table[getattr(info, id_field)] = info
        return info

    @staticmethod
    def _replace(table: dict[str, Message], req: Message, id_field: str, what: str) -> Message:
        """An Update*Request with ``action = replace``: the stored object is swapped whole."""
        object_id = getattr(req, id_field)
        if object_id not in table:
            raise TwirpFailure("not_found", f"{what} {object_id} not found", 404)
        if req.WhichOneof("action") != "replace":
            raise TwirpFailure("unimplemented", "double supports replace updates only", 501)
        info = type(table[object_id])()
        info.CopyFrom(req.replace)
        setattr(info, id_field, object_id)
        table[object_id] = info
        return info

    def _h_SIP_CreateSIPInboundTrunk(self, req: sip.CreateSIPInboundTrunkRequest, _: dict) -> sip.SIPInboundTrunkInfo:
        info = sip.SIPInboundTrunkInfo()
        info.CopyFrom(req.trunk)
        return self._insert(self.inbound_trunks, info, "sip_trunk_id", "ST")

    def _h_SIP_CreateSIPOutboundTrunk(self, req: sip.CreateSIPOutboundTrunkRequest, _: dict) -> sip.SIPOutboundTrunkInfo:
        info = sip.SIPOutboundTrunkInfo()
        info.CopyFrom(req.trunk)
        return self._insert(self.outbound_trunks, info, "sip_trunk_id", "ST")

    def _h_SIP_UpdateSIPInboundTrunk(self, req: sip.UpdateSIPInboundTrunkRequest, _: dict) -> sip.SIPInboundTrunkInfo:
        return self._replace(self.inbound_trunks, req, "sip_trunk_id", "trunk")

    def _h_SIP_UpdateSIPOutboundTrunk(self, req: sip.UpdateSIPOutboundTrunkRequest, _: dict) -> sip.SIPOutboundTrunkInfo:
        return self._replace(self.outbound_trunks, req, "sip_trunk_id", "trunk")

    def _h_SIP_ListSIPInboundTrunk(self, _req: Message, _: dict) -> sip.ListSIPInboundTrunkResponse:
        return sip.ListSIPInboundTrunkResponse(items=list(self.inbound_trunks.values()))

    def _h_SIP_ListSIPOutboundTrunk(self, _req: Message, _: dict) -> sip.ListSIPOutboundTrunkResponse:
        return sip.ListSIPOutboundTrunkResponse(items=list(self.outbound_trunks.values()))

    def _h_SIP_DeleteSIPTrunk(self, req: sip.DeleteSIPTrunkRequest, _: dict) -> sip.SIPTrunkInfo:
        if self.inbound_trunks.pop(req.sip_trunk_id, None) is None and self.outbound_trunks.pop(req.sip_trunk_id, None) is None:
            raise TwirpFailure("not_found", f"trunk {req.sip_trunk_id} not found", 404)
        return sip.SIPTrunkInfo(sip_trunk_id=req.sip_trunk_id)

    def _h_SIP_CreateSIPDispatchRule(self, req: sip.CreateSIPDispatchRuleRequest, _: dict) -> sip.SIPDispatchRuleInfo:
        info = sip.SIPDispatchRuleInfo()
        if req.HasField("dispatch_rule"):
            info.CopyFrom(req.dispatch_rule)
        else:  # deprecated flat fields
            info.rule.CopyFrom(req.rule)
            info.trunk_ids.extend(req.trunk_ids)
            info.name = req.name
            info.room_config.CopyFrom(req.room_config)
        return self._insert(self.dispatch_rules, info, "sip_dispatch_rule_id", "SDR")

    def _h_SIP_UpdateSIPDispatchRule(self, req: sip.UpdateSIPDispatchRuleRequest, _: dict) -> sip.SIPDispatchRuleInfo:
        return self._replace(self.dispatch_rules, req, "sip_dispatch_rule_id", "dispatch rule")

    def _h_SIP_ListSIPDispatchRule(self, _req: Message, _: dict) -> sip.ListSIPDispatchRuleResponse:
        return sip.ListSIPDispatchRuleResponse(items=list(self.dispatch_rules.values()))

    def _h_SIP_DeleteSIPDispatchRule(self, req: sip.DeleteSIPDispatchRuleRequest, _: dict) -> sip.SIPDispatchRuleInfo:
        info = self.dispatch_rules.pop(req.sip_dispatch_rule_id, None)
        if info is None:
            raise TwirpFailure("not_found", f"dispatch rule {req.sip_dispatch_rule_id} not found", 404)
        return info

    def _h_SIP_CreateSIPParticipant(self, req: sip.CreateSIPParticipantRequest, _: dict) -> sip.SIPParticipantInfo:
        if req.sip_trunk_id and req.sip_trunk_id not in self.outbound_trunks:
            raise TwirpFailure("not_found", f"outbound trunk {req.sip_trunk_id} not found", 404)
        self.sip_participants.append(req)
        failure = self.sip_outcomes.get(req.sip_call_to)
        if failure is not None:
            raise failure
        identity = req.participant_identity or f"sip_{req.sip_call_to}"
        return sip.SIPParticipantInfo(
            participant_id=self.new_id("PA"),
            participant_identity=identity,
            room_name=req.room_name,
            sip_call_id=self.new_id("SCL"),
        )

    def _h_SIP_TransferSIPParticipant(self, req: sip.TransferSIPParticipantRequest, _: dict) -> Message:
        return sip.TransferSIPParticipantResponse() if hasattr(sip, "TransferSIPParticipantResponse") else _empty()

    def _h_AgentDispatchService_CreateDispatch(
        self, req: agent_dispatch.CreateAgentDispatchRequest, _: dict
    ) -> agent_dispatch.AgentDispatch:
        d = agent_dispatch.AgentDispatch(
            id=self.new_id("AD"), agent_name=req.agent_name, room=req.room, metadata=req.metadata
        )
        self.dispatches.setdefault(req.room, []).append(d)
        self.rooms.setdefault(req.room, models.Room(sid=self.new_id("RM"), name=req.room, creation_time=int(time.time())))
        return d

    def _h_AgentDispatchService_ListDispatch(
        self, req: agent_dispatch.ListAgentDispatchRequest, _: dict
    ) -> agent_dispatch.ListAgentDispatchResponse:
        return agent_dispatch.ListAgentDispatchResponse(agent_dispatches=self.dispatches.get(req.room, []))

    def _h_AgentDispatchService_DeleteDispatch(
        self, req: agent_dispatch.DeleteAgentDispatchRequest, _: dict
    ) -> agent_dispatch.AgentDispatch:
        for d in self.dispatches.get(req.room, []):
            if d.id == req.dispatch_id:
                self.dispatches[req.room].remove(d)
                return d
        raise TwirpFailure("not_found", f"dispatch {req.dispatch_id} not found", 404)

    def _h_RoomService_CreateRoom(self, req: room.CreateRoomRequest, _: dict) -> models.Room:
        return self.rooms.setdefault(
            req.name, models.Room(sid=self.new_id("RM"), name=req.name, metadata=req.metadata, creation_time=int(time.time()))
        )

    def _h_RoomService_ListRooms(self, req: room.ListRoomsRequest, _: dict) -> room.ListRoomsResponse:
        names = set(req.names)
        return room.ListRoomsResponse(rooms=[r for n, r in self.rooms.items() if not names or n in names])

    def _h_RoomService_DeleteRoom(self, req: room.DeleteRoomRequest, _: dict) -> room.DeleteRoomResponse:
        self.rooms.pop(req.room, None)
        return room.DeleteRoomResponse()

    def _h_Egress_StartRoomCompositeEgress(self, req: egress.RoomCompositeEgressRequest, _: dict) -> egress.EgressInfo:
        return self._start_egress(req.room_name)

    def _h_Egress_StartTrackCompositeEgress(self, req: egress.TrackCompositeEgressRequest, _: dict) -> egress.EgressInfo:
        return self._start_egress(req.room_name)

    def _h_Egress_StartParticipantEgress(self, req: egress.ParticipantEgressRequest, _: dict) -> egress.EgressInfo:
        return self._start_egress(req.room_name)

    def _h_Egress_StopEgress(self, req: egress.StopEgressRequest, _: dict) -> egress.EgressInfo:
        info = self.egresses.get(req.egress_id)
        if info is None:
            raise TwirpFailure("not_found", f"egress {req.egress_id} not found", 404)
        info.status = egress.EGRESS_COMPLETE
        return info

    def _h_Egress_ListEgress(self, req: egress.ListEgressRequest, _: dict) -> egress.ListEgressResponse:
        items = [e for e in self.egresses.values() if not req.room_name or e.room_name == req.room_name]
        return egress.ListEgressResponse(items=items)

    def _start_egress(self, room_name: str) -> egress.EgressInfo:
        info = egress.EgressInfo(egress_id=self.new_id("EG"), room_name=room_name, status=egress.EGRESS_STARTING)
        self.egresses[info.egress_id] = info
        return info


def _empty() -> Message:
    from google.protobuf import empty_pb2

    return empty_pb2.Empty()


def _error(f: TwirpFailure) -> web.Response:
    body: dict[str, Any] = {"code": f.code, "msg": f.msg}
    if f.meta:
        body["meta"] = f.meta
    return web.json_response(body, status=f.status)
