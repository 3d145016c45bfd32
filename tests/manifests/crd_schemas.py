"""Schemas for the custom resources the manifests use, which kubernetes-validate cannot know.

Each is a strict subset of the CRD's published OpenAPI schema (Gateway API v1.2 standard
channel, GKE's networking.gke.io/v1 policies, STUNner's stunner.l7mp.io/v1): the fields
these manifests may use, with the CRD's required fields, enums and patterns, and
``additionalProperties: false`` so a misspelt or unsupported field fails here as an unknown
field fails ``kubernetes-validate --strict`` for built-in kinds. A field the manifests
start using must be added here from the CRD's schema, deliberately.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}


def _obj(properties: Schema, required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = _obj(
    {
        "name": {"type": "string", "pattern": _DNS_SUBDOMAIN, "maxLength": 253},
        "namespace": {"type": "string", "pattern": _DNS_LABEL},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    ("name",),
)
_CLUSTER_METADATA = {**_METADATA, "not": {"required": ["namespace"]}}

_PARENT_REF = _obj(
    {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string", "minLength": 1},
        "namespace": {"type": "string"},
        "sectionName": {"type": "string", "pattern": _DNS_LABEL},
        "port": _PORT,
    },
    ("name",),
)
_BACKEND_REF = _obj(
    {
        "group": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string", "minLength": 1},
        "namespace": {"type": "string"},
        "port": _PORT,
        "weight": {"type": "integer", "minimum": 0},
    },
    ("name",),
)
_POLICY_TARGET_REF = _obj(
    {"group": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string", "minLength": 1}},
    ("group", "kind", "name"),
)


def _resource(api_version: str, kind: str, spec: Schema, *, cluster_scoped: bool = False) -> Schema:
    return _obj(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _CLUSTER_METADATA if cluster_scoped else _METADATA,
            "spec": spec,
        },
        ("apiVersion", "kind", "metadata", "spec"),
    )


GATEWAY_CLASS = _resource(
    "gateway.networking.k8s.io/v1",
    "GatewayClass",
    _obj(
        {
            "controllerName": {
                "type": "string",
                "pattern": r"^[a-z0-9]([-a-z0-9.]*)?/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$",
            },
            "parametersRef": _obj(
                {
                    "group": {"type": "string"},
                    "kind": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1},
                    "namespace": {"type": "string"},
                },
                ("group", "kind", "name"),
            ),
            "description": {"type": "string", "maxLength": 64},
        },
        ("controllerName",),
    ),
    cluster_scoped=True,
)

_LISTENER = _obj(
    {
        "name": {"type": "string", "pattern": _DNS_LABEL},
        "hostname": {"type": "string", "pattern": _HOSTNAME},
        "port": _PORT,
        # HTTP/HTTPS for GKE's classes; TURN-* are STUNner's listener protocols
        "protocol": {"enum": ["HTTP", "HTTPS", "TURN-UDP", "TURN-TCP", "TURN-TLS", "TURN-DTLS"]},
        "allowedRoutes": _obj(
            {"namespaces": _obj({"from": {"enum": ["All", "Same", "Selector"]}}, ("from",))},
        ),
    },
    ("name", "port", "protocol"),
)
GATEWAY = _resource(
    "gateway.networking.k8s.io/v1",
    "Gateway",
    _obj(
        {
            "gatewayClassName": {"type": "string", "minLength": 1},
            "listeners": {"type": "array", "items": _LISTENER, "minItems": 1, "maxItems": 64},
            "addresses": {
                "type": "array",
                "items": _obj(
                    {
                        "type": {"enum": ["IPAddress", "NamedAddress", "Hostname"]},
                        "value": {"type": "string", "minLength": 1},
                    },
                    ("value",),
                ),
                "maxItems": 16,
            },
        },
        ("gatewayClassName", "listeners"),
    ),
)

HTTP_ROUTE = _resource(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    _obj(
        {
            "parentRefs": {"type": "array", "items": _PARENT_REF, "minItems": 1, "maxItems": 32},
            "hostnames": {"type": "array", "items": {"type": "string", "pattern": _HOSTNAME}, "maxItems": 16},
            "rules": {
                "type": "array",
                "items": _obj(
                    {
                        "matches": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "path": _obj(
                                        {
                                            "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                            "value": {"type": "string", "pattern": "^/"},
                                        }
                                    )
                                }
                            ),
                        },
                        "backendRefs": {"type": "array", "items": _BACKEND_REF},
                    }
                ),
                "minItems": 1,
            },
        },
        ("parentRefs",),
    ),
)

HEALTH_CHECK_POLICY = _resource(
    "networking.gke.io/v1",
    "HealthCheckPolicy",
    _obj(
        {
            "default": _obj(
                {
                    "checkIntervalSec": {"type": "integer", "minimum": 1, "maximum": 300},
                    "timeoutSec": {"type": "integer", "minimum": 1, "maximum": 300},
                    "healthyThreshold": {"type": "integer", "minimum": 1, "maximum": 10},
                    "unhealthyThreshold": {"type": "integer", "minimum": 1, "maximum": 10},
                    "config": _obj(
                        {
                            "type": {"enum": ["TCP", "HTTP", "HTTPS", "HTTP2", "GRPC"]},
                            "httpConfig": _obj(
                                {
                                    "port": _PORT,
                                    "requestPath": {"type": "string", "pattern": "^/"},
                                    "host": {"type": "string"},
                                }
                            ),
                        },
                        ("type",),
                    ),
                }
            ),
            "targetRef": _POLICY_TARGET_REF,
        },
        ("default", "targetRef"),
    ),
)

GCP_BACKEND_POLICY = _resource(
    "networking.gke.io/v1",
    "GCPBackendPolicy",
    _obj(
        {
            "default": _obj(
                {
                    "timeoutSec": {"type": "integer", "minimum": 1, "maximum": 2147483647},
                    "connectionDraining": _obj(
                        {"drainingTimeoutSec": {"type": "integer", "minimum": 0, "maximum": 3600}}
                    ),
                    # IAP with the site's OAuth client: the id inline, the secret by reference to
                    # a Secret (key `key`) in the policy's namespace
                    "iap": _obj(
                        {
                            "enabled": {"type": "boolean"},
                            "clientID": {"type": "string"},
                            "oauth2ClientSecret": _obj({"name": {"type": "string", "minLength": 1}}, ("name",)),
                        },
                        ("enabled",),
                    ),
                }
            ),
            "targetRef": _POLICY_TARGET_REF,
        },
        ("default", "targetRef"),
    ),
)

STUNNER_GATEWAY_CONFIG = _resource(
    "stunner.l7mp.io/v1",
    "GatewayConfig",
    _obj(
        {
            "realm": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$"},
            # credentials only by reference to a Secret: inline userName/password/authType are
            # left out of this schema on purpose, so they fail validation
            "authRef": _obj({"name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"}}, ("name",)),
            "dataplane": {"type": "string"},
            "logLevel": {"type": "string"},
        },
        ("authRef",),
    ),
)

STUNNER_UDP_ROUTE = _resource(
    "stunner.l7mp.io/v1",
    "UDPRoute",
    _obj(
        {
            "parentRefs": {"type": "array", "items": _PARENT_REF, "minItems": 1},
            "rules": {
                "type": "array",
                "items": _obj(
                    {"backendRefs": {"type": "array", "items": _BACKEND_REF, "minItems": 1}}, ("backendRefs",)
                ),
                "minItems": 1,
            },
        },
        ("parentRefs", "rules"),
    ),
)

CRD_SCHEMAS: dict[tuple[str, str], Schema] = {
    (s["properties"]["apiVersion"]["const"], s["properties"]["kind"]["const"]): s
    for s in (
        GATEWAY_CLASS,
        GATEWAY,
        HTTP_ROUTE,
        HEALTH_CHECK_POLICY,
        GCP_BACKEND_POLICY,
        STUNNER_GATEWAY_CONFIG,
        STUNNER_UDP_ROUTE,
    )
}
