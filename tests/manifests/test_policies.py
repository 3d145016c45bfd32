"""Policies over the rendered objects: what every pod must have, and the sizes the design
document fixes for the first site (overlays/gke)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from tests.manifests.render import (
    MANIFESTS_DIR,
    NAME_LABEL,
    OVERLAYS,
    RENDERS,
    KubeObject,
    containers,
    find,
    pod_templates,
    site_values,
)

GPU = "nvidia.com/gpu"
GPU_WORKLOADS = {"riva-stt", "vllm", "chatterbox-tts"}
# Images whose user cannot be verified as non-root by the kubelet, with the reason
ROOT_OR_NAMED_USER = {
    "riva-stt": "NVIDIA's Riva image runs as root and writes Triton state under /data",
    "livekit-egress": "the egress image runs as a named (non-numeric) user",
}
SECRET_ENV = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)", re.IGNORECASE)
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _name(obj: KubeObject) -> str:
    return obj["metadata"]["labels"][NAME_LABEL]


def _pods(objects: list[KubeObject]) -> list[tuple[KubeObject, KubeObject]]:
    return list(pod_templates(objects))


def _quantity(value: str | int) -> float:
    """CPU or memory quantity as a number (cores or bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _expand(value: str, env: dict[str, str]) -> str:
    return VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def _config_body(container: KubeObject, name: str, substitutes: dict[str, str] | None = None) -> dict:
    env = {e["name"]: e for e in container["env"]}
    return yaml.safe_load(_expand(env[name]["value"], substitutes or {}))


# --- every pod ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_container_has_equal_requests_and_limits(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    """Autopilot bills and schedules by requests and forces limits to them: say both, equal."""
    for workload, template in _pods(rendered[overlay]):
        for c in containers(template["spec"]):
            resources = c.get("resources", {})
            for kind in ("cpu", "memory"):
                request = resources.get("requests", {}).get(kind)
                limit = resources.get("limits", {}).get(kind)
                assert request and limit, f"{_name(workload)}/{c['name']} lacks a {kind} request or limit"
                assert _quantity(request) == _quantity(limit), (
                    f"{_name(workload)}/{c['name']} {kind} {request} != {limit}"
                )


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_container_has_readiness_and_liveness_probes(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    for workload, template in _pods(rendered[overlay]):
        for c in template["spec"]["containers"]:
            assert "readinessProbe" in c and "livenessProbe" in c, f"{_name(workload)}/{c['name']} lacks a probe"


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_container_runs_without_privileges(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    for workload, template in _pods(rendered[overlay]):
        pod_security = template["spec"].get("securityContext", {})
        assert pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault", _name(workload)
        if _name(workload) not in ROOT_OR_NAMED_USER:
            assert pod_security.get("runAsNonRoot") is True, f"{_name(workload)} may run as root"
        for c in containers(template["spec"]):
            security = c.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, f"{_name(workload)}/{c['name']}"
            assert security.get("capabilities", {}).get("drop") == ["ALL"], f"{_name(workload)}/{c['name']}"
            assert "add" not in security.get("capabilities", {}), f"{_name(workload)}/{c['name']} adds capabilities"
            assert not security.get("privileged"), f"{_name(workload)}/{c['name']} is privileged"
        assert not template["spec"].get("hostNetwork"), f"{_name(workload)}: Autopilot forbids hostNetwork"


# --- GPU rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gpu_pods_follow_the_l4_rules(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    gpu_workloads = set()
    for workload, template in _pods(rendered[overlay]):
        spec = template["spec"]
        asks_gpu = [c for c in containers(spec) if GPU in c["resources"].get("limits", {})]
        on_gpu_nodes = "cloud.google.com/gke-accelerator" in spec.get("nodeSelector", {})
        assert bool(asks_gpu) == on_gpu_nodes, f"{_name(workload)}: GPU request and GPU node selector disagree"
        if not asks_gpu:
            continue
        gpu_workloads.add(_name(workload))
        assert spec["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
        for c in asks_gpu:
            assert str(c["resources"]["requests"][GPU]) == str(c["resources"]["limits"][GPU]) == "1", _name(workload)
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/dev/shm" in mounts, f"{_name(workload)} lacks a /dev/shm volume"
            shm = next(v for v in spec["volumes"] if v["name"] == mounts["/dev/shm"])
            assert shm.get("emptyDir", {}).get("medium") == "Memory", (
                f"{_name(workload)}'s /dev/shm is not memory-backed"
            )
            if c in spec.get("initContainers", []):
                continue  # an init container runs to completion (riva-model-init): no probes
            startup = c.get("startupProbe")
            assert startup, f"{_name(workload)} lacks a startupProbe sized to model load time"
            window = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
            assert window >= 600, f"{_name(workload)} startup window {window}s is shorter than a model load"
        # one GPU per replica; a surge pod would wait for a second L4
        assert workload["spec"]["strategy"]["type"] == "Recreate", _name(workload)
    assert gpu_workloads == GPU_WORKLOADS


def test_vllm_serves_llama_3_1_8b_within_an_l4(gke: list[KubeObject]) -> None:
    container = find(gke, "Deployment", "vllm")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "vllm/vllm-openai:v0.8.5.post1"
    args = dict(
        a.removeprefix("--").split("=", 1) if "=" in a else (a.removeprefix("--"), "") for a in container["args"]
    )
    assert args["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert int(args["max-model-len"]) <= 8192
    # bf16 weights ~15 GiB of the L4's ~22 GiB usable: the rest (minus activations) is KV cache
    assert 0.85 <= float(args["gpu-memory-utilization"]) <= 0.92
    assert "enable-auto-tool-choice" in args, "the agent's function tools need tool calling"
    env = {e["name"]: e for e in container["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"


def test_riva_and_tts_probes(gke: list[KubeObject]) -> None:
    riva = find(gke, "Deployment", "riva-stt")["spec"]["template"]["spec"]["containers"][0]
    assert riva["image"] == "nvcr.io/nvidia/riva/riva-speech:2.17.0"
    assert riva["readinessProbe"]["grpc"]["port"] == 50051
    assert any(m["mountPath"] == "/data" for m in riva["volumeMounts"]), "Riva needs its model repository volume"
    tts = find(gke, "Deployment", "chatterbox-tts")["spec"]["template"]["spec"]["containers"][0]
    assert tts["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert tts["livenessProbe"]["httpGet"]["path"] == "/health"


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_image_is_pinned(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    for workload, template in _pods(rendered[overlay]):
        for c in containers(template["spec"]):
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{_name(workload)} image {image} has no tag (means :latest)"
            assert tag != "latest", f"{_name(workload)} image {image} is :latest"


def test_gke_pins_livekit_by_version_and_uses_the_site_registry(gke: list[KubeObject]) -> None:
    images = {_name(w): c["image"] for w, t in _pods(gke) for c in t["spec"]["containers"]}
    for workload, repository in (
        ("livekit-server", "livekit/livekit-server"),
        ("livekit-sip", "livekit/sip"),
        ("livekit-egress", "livekit/egress"),
    ):
        assert re.fullmatch(rf"{repository}:v\d+\.\d+\.\d+", images[workload]), images[workload]
    registry = "us-central1-docker.pkg.dev/hello-jade/call-center/"
    assert images["agent"].startswith(registry + "agent:")
    assert images["chatterbox-tts"].startswith(registry + "chatterbox-tts:")


# --- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", RENDERS)
def test_no_credentials_in_the_rendered_manifests(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    objects = rendered[overlay]
    assert not [o for o in objects if o["kind"] == "Secret"], (
        "Secrets are created by hand (docs/secrets.md), never rendered"
    )
    text = yaml.safe_dump_all(objects)
    for demo in ("plaintext", "user-1", "pass-1", "devkey", "AKIA", "BEGIN PRIVATE KEY", "hf_"):
        assert demo not in text, f"{demo!r} appears in the rendered {overlay} manifests"
    for workload, template in _pods(objects):
        for c in containers(template["spec"]):
            for env in c.get("env", []):
                if SECRET_ENV.search(env["name"]) and "value" in env:
                    # only compositions of secret-backed variables, e.g. "$(KEY): $(SECRET)"
                    leftover = VAR_REF.sub("", env["value"]).strip(" :\n")
                    assert not leftover, f"{_name(workload)} sets {env['name']} to a literal"
    for config in (o for o in objects if o["kind"] == "ConfigMap"):
        for key in config.get("data", {}):
            assert not SECRET_ENV.search(key) or key in {"TTS_MAX_QUEUE"}, (
                f"ConfigMap {config['metadata']['name']} holds {key}"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_bodies_take_credentials_only_from_secrets(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    server = find(rendered[overlay], "Deployment", "livekit-server")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in server["env"]}
    for name in ("TURN_USERNAME", "TURN_PASSWORD", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
    config = _config_body(server, "LIVEKIT_CONFIG")
    turn = config["rtc"]["turn_servers"][0]
    assert (turn["username"], turn["credential"]) == ("$(TURN_USERNAME)", "$(TURN_PASSWORD)")
    assert env["LIVEKIT_KEYS"]["value"] == "$(LIVEKIT_API_KEY): $(LIVEKIT_API_SECRET)"
    stunner = find(rendered[overlay], "GatewayConfig", "stunner")
    assert stunner["spec"]["authRef"]["name"] == env["TURN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]


@pytest.mark.parametrize("overlay", RENDERS)
def test_env_expansions_refer_to_earlier_variables(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    """The kubelet expands $(VAR) only from variables defined earlier in the same list (or by
    envFrom); anything else stays literal, e.g. a TURN password of "$(TURN_PASSWORD)"."""
    for workload, template in _pods(rendered[overlay]):
        for c in containers(template["spec"]):
            defined: set[str] = set()
            if c.get("envFrom"):
                defined |= _env_from_keys(rendered[overlay], c)
            for env in c.get("env", []):
                for ref in VAR_REF.findall(env.get("value", "")):
                    assert ref in defined, f"{_name(workload)}: {env['name']} uses $({ref}) before it is defined"
                defined.add(env["name"])


def _env_from_keys(objects: list[KubeObject], container: KubeObject) -> set[str]:
    keys: set[str] = set()
    for source in container["envFrom"]:
        if "configMapRef" in source:
            keys |= set(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    return keys


@pytest.mark.parametrize("overlay", RENDERS)
def test_config_references_resolve(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    objects = rendered[overlay]
    for workload, template in _pods(objects):
        for c in containers(template["spec"]):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    data = find(objects, "ConfigMap", ref["name"])["data"]
                    assert ref["key"] in data, f"{_name(workload)}: ConfigMap {ref['name']} has no key {ref['key']}"
            for source in c.get("envFrom", []):
                find(objects, "ConfigMap", source["configMapRef"]["name"])
        for volume in template["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                find(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
            if "configMap" in volume:
                find(objects, "ConfigMap", volume["configMap"]["name"])
        service_account = template["spec"].get("serviceAccountName")
        assert service_account, f"{_name(workload)} runs as the default service account"
        find(objects, "ServiceAccount", service_account)


# --- drain and disruption -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_agent_grace_period_covers_its_drain(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    config = find(rendered[overlay], "ConfigMap", "agent-config")["data"]
    drain = int(config["DRAIN_TIMEOUT_S"])
    assert drain >= int(config["MAX_CALL_DURATION_S"]), "a call may outlive the drain and be cut"
    grace = find(rendered[overlay], "Deployment", "agent")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= drain + 30, "the kubelet would SIGKILL a draining worker before its last report is written"


def test_call_carrying_pods_drain_for_five_hours(gke: list[KubeObject]) -> None:
    for name in ("livekit-server", "livekit-sip-a", "livekit-sip-b", "livekit-egress"):
        spec = find(gke, "Deployment", name)["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] >= 18000, name


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_workload_has_a_pod_disruption_budget(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    budgets = [o for o in rendered[overlay] if o["kind"] == "PodDisruptionBudget"]
    for workload, template in _pods(rendered[overlay]):
        labels = template["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, f"{workload['metadata']['name']} is covered by {len(matching)} PDBs"


def test_gke_budgets_keep_a_replica_serving(gke: list[KubeObject]) -> None:
    for budget in (o for o in gke if o["kind"] == "PodDisruptionBudget"):
        if "minAvailable" in budget["spec"]:
            assert budget["spec"]["minAvailable"] >= 1
        else:
            assert budget["spec"]["maxUnavailable"] == 1 and budget["metadata"]["name"] == "agent"


# --- SIP ----------------------------------------------------------------------------------------

TWILIO_MEDIA = ipaddress.ip_network("168.86.128.0/18")
TWILIO_ASHBURN_SIGNALLING = ipaddress.ip_network("54.172.60.0/30")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sip_load_balancers_admit_only_twilio(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    balancers = [o for o in rendered[overlay] if o["kind"] == "Service" and o["spec"]["type"] == "LoadBalancer"]
    assert balancers and all(_name(s) == "livekit-sip" for s in balancers), "only SIP is an L4 LoadBalancer"
    for service in balancers:
        ranges = [ipaddress.ip_network(r) for r in service["spec"].get("loadBalancerSourceRanges", [])]
        assert ranges, f"{service['metadata']['name']} is open to the internet"
        assert all(r.prefixlen >= 16 for r in ranges), f"{service['metadata']['name']} admits a range wider than /16"
        assert TWILIO_MEDIA in ranges and TWILIO_ASHBURN_SIGNALLING in ranges
        # Twilio's source address must survive for the inbound trunk's allowed_addresses
        assert service["spec"]["externalTrafficPolicy"] == "Local"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_sip_instance_advertises_its_own_load_balancer(
    rendered: dict[str, list[KubeObject]], overlay: str
) -> None:
    objects = rendered[overlay]
    site = site_values(overlay)
    instances = [w for w, _ in _pods(objects) if _name(w) == "livekit-sip"]
    assert instances
    for deployment in instances:
        name = deployment["metadata"]["name"]
        assert deployment["spec"]["replicas"] == 1, f"{name}: one pod per public IP"
        service = find(objects, "Service", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        site_key = f"{name.removeprefix('livekit-')}-public-ip"
        assert env["SIP_PUBLIC_IP"]["value"] == site[site_key], f"{name} does not advertise its site IP"
        config = _config_body(container, "SIP_CONFIG_BODY", {"SIP_PUBLIC_IP": "203.0.113.7"})
        assert config["nat_1_to_1_ip"] == "203.0.113.7"
        if site[site_key]:
            assert service["spec"].get("loadBalancerIP") == site[site_key], f"{name} advertises another IP than its LB"
        start, end = (int(p) for p in config["rtp_port"].split("-"))
        udp_ports = {p["port"] for p in service["spec"]["ports"] if p["protocol"] == "UDP"}
        assert udp_ports == {5060, *range(start, end + 1)}, f"{name}: Service ports differ from the RTP range"
        assert config["redis"]["address"] == "redis:6379"


# --- sizes (design document) ----------------------------------------------------------------------

SIZES = {
    # workload: (replicas, cpu, memory)
    "livekit-server": (2, 2, "4Gi"),
    "livekit-sip": (2, 1, "2Gi"),
    # not the design table's 2: the design's 100 concurrent calls, recorded with one pod away
    "livekit-egress": (8, 2, "4Gi"),
    "redis": (1, 0.5, "1Gi"),
    "agent": (None, 4, "8Gi"),
    "riva-stt": (1, None, None),
    "vllm": (1, None, None),
    "chatterbox-tts": (1, None, None),
}


def test_gke_sizes_match_the_design_document(gke: list[KubeObject]) -> None:
    replicas: dict[str, int] = {}
    for workload, template in _pods(gke):
        name = _name(workload)
        replicas[name] = replicas.get(name, 0) + workload["spec"].get("replicas", 0)
        if name not in SIZES:
            continue
        _, cpu, memory = SIZES[name]
        requests = template["spec"]["containers"][0]["resources"]["requests"]
        if cpu is not None:
            assert _quantity(requests["cpu"]) == cpu, f"{name} cpu {requests['cpu']}"
            assert _quantity(requests["memory"]) == _quantity(memory), f"{name} memory {requests['memory']}"
    for name, (count, _, _) in SIZES.items():
        if count is not None:
            assert replicas[name] == count, f"{name} runs {replicas[name]} replicas, the design says {count}"
    hpa = find(gke, "HorizontalPodAutoscaler", "agent")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    assert "replicas" not in find(gke, "Deployment", "agent")["spec"], "the HPA owns the agent's replica count"
    redis = find(gke, "StatefulSet", "redis")["spec"]
    assert redis["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]


def test_dev_is_the_small_footprint_on_spot(rendered: dict[str, list[KubeObject]]) -> None:
    dev = rendered["dev"]
    assert find(dev, "Deployment", "livekit-server")["spec"]["replicas"] == 1
    assert not [o for o in dev if o["metadata"]["name"] == "livekit-sip-b"]
    assert find(dev, "HorizontalPodAutoscaler", "agent")["spec"]["maxReplicas"] == 2
    for name in GPU_WORKLOADS:
        selector = find(dev, "Deployment", name)["spec"]["template"]["spec"]["nodeSelector"]
        assert selector["cloud.google.com/gke-spot"] == "true"
    for name in GPU_WORKLOADS:
        assert (
            "cloud.google.com/gke-spot"
            not in find(rendered["gke"], "Deployment", name)["spec"]["template"]["spec"]["nodeSelector"]
        )


# --- wiring between objects -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", RENDERS)
def test_services_select_pods_and_name_their_ports(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    objects = rendered[overlay]
    for service in (o for o in objects if o["kind"] == "Service"):
        selected = [
            t for _, t in _pods(objects) if service["spec"]["selector"].items() <= t["metadata"]["labels"].items()
        ]
        assert selected, f"Service {service['metadata']['name']} selects no pods"
        container_ports = {p.get("name") for t in selected for c in t["spec"]["containers"] for p in c.get("ports", [])}
        container_numbers = {
            p["containerPort"] for t in selected for c in t["spec"]["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            if isinstance(target, str):
                assert target in container_ports, f"Service {service['metadata']['name']} targets unknown port {target}"
            elif target not in container_numbers:
                # RTP ports are not declared one by one in the pod; they are in the SIP config
                assert 10000 <= target <= 20000, f"Service {service['metadata']['name']} targets {target}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_routes_and_policies_point_at_real_services(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    objects = rendered[overlay]
    server = find(objects, "Service", "livekit-server")
    ports = {p["port"] for p in server["spec"]["ports"]}
    route = find(objects, "HTTPRoute", "livekit-signalling")
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "livekit-server", "port": 7880}]
    assert route["spec"]["parentRefs"][0]["name"] == find(objects, "Gateway", "call-center")["metadata"]["name"]
    assert route["spec"]["hostnames"] == [site_values(overlay)["domain"]]
    udp_route = find(objects, "UDPRoute", "livekit-media")
    backend = udp_route["spec"]["rules"][0]["backendRefs"][0]
    assert backend["name"] == "livekit-server" and backend["port"] in ports
    livekit = _config_body(
        find(objects, "Deployment", "livekit-server")["spec"]["template"]["spec"]["containers"][0], "LIVEKIT_CONFIG"
    )
    assert livekit["rtc"]["udp_port"] == backend["port"], "STUNner relays to a port LiveKit does not listen on"
    stunner = find(objects, "Gateway", "stunner")
    assert (
        stunner["spec"]["gatewayClassName"] == find(objects, "GatewayClass", "call-center-stunner")["metadata"]["name"]
    )
    assert livekit["rtc"]["turn_servers"][0]["port"] == stunner["spec"]["listeners"][0]["port"] == 3478
    for kind in ("HealthCheckPolicy", "GCPBackendPolicy"):
        assert find(objects, kind, "livekit-server")["spec"]["targetRef"]["name"] == "livekit-server"
    # WebSocket signalling lives as long as the backend timeout allows
    assert find(objects, "GCPBackendPolicy", "livekit-server")["spec"]["default"]["timeoutSec"] >= 3600


def test_gateway_serves_the_site_domain_on_its_static_ip(gke: list[KubeObject]) -> None:
    gateway = find(gke, "Gateway", "call-center")
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-global-external-managed"
    assert gateway["spec"]["addresses"] == [{"type": "IPAddress", "value": "34.117.31.39"}]
    assert gateway["metadata"]["annotations"]["networking.gke.io/certmap"]
    assert find(gke, "HTTPRoute", "livekit-signalling")["spec"]["hostnames"] == ["calls.hellojade.ai"]


def test_workload_identity_instead_of_key_files(gke: list[KubeObject]) -> None:
    for account in ("livekit-egress", "agent"):
        annotation = find(gke, "ServiceAccount", account)["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        assert annotation.endswith("@hello-jade.iam.gserviceaccount.com")
    egress = find(gke, "Deployment", "livekit-egress")["spec"]["template"]["spec"]["containers"][0]
    config = _config_body(egress, "EGRESS_CONFIG_BODY", {"RECORDINGS_BUCKET": "call-center-recordings-hellojade"})
    assert config["gcp"] == {"bucket": "call-center-recordings-hellojade"}, "Egress must not carry credentials_json"
    assert {e["name"]: e.get("value") for e in egress["env"]}["RECORDINGS_BUCKET"] == site_values("gke")[
        "recordings-bucket"
    ]


def test_agent_reaches_the_inference_services_by_their_service_names(gke: list[KubeObject]) -> None:
    config = find(gke, "ConfigMap", "agent-config")["data"]
    assert config["RIVA_SERVER"] == "riva-stt:50051"
    assert config["LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert config["TTS_BASE_URL"] == "http://chatterbox-tts:8880/v1"
    for service, port in (("riva-stt", 50051), ("vllm", 8000), ("chatterbox-tts", 8880)):
        assert port in {p["port"] for p in find(gke, "Service", service)["spec"]["ports"]}
    agent = find(gke, "Deployment", "agent")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in agent["env"]}
    assert env["LIVEKIT_API_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "livekit-api-keys", "key": "api-secret"}


# --- network policies ---------------------------------------------------------------------------


def _policy_for(objects: list[KubeObject], name: str) -> KubeObject:
    policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["spec"]["podSelector"]["matchLabels"] == {NAME_LABEL: name}
    ]
    assert len(policies) == 1, f"{len(policies)} NetworkPolicies select {name}"
    return policies[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_inference_is_reachable_only_from_its_clients(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    objects = rendered[overlay]
    for name in GPU_WORKLOADS:
        policy = _policy_for(objects, name)
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        assert peers == [{"podSelector": {"matchLabels": {"callcenter/inference-client": "true"}}}]
    clients = {
        _name(w) for w, t in _pods(objects) if t["metadata"]["labels"].get("callcenter/inference-client") == "true"
    }
    assert clients == {"agent"}, "only the agent (and Dagster's run pods, from Helm) may call inference"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_is_reachable_only_from_livekit(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    policy = _policy_for(rendered[overlay], "redis")
    (peer,) = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    (expression,) = peer["podSelector"]["matchExpressions"]
    assert expression["key"] == NAME_LABEL and expression["operator"] == "In"
    assert set(expression["values"]) == {"livekit-server", "livekit-sip", "livekit-egress"}


# --- the first customer's values stay in overlays/gke ---------------------------------------------

CUSTOMER_VALUES = ("hellojade", "hello-jade", "34.117.31.39")


def test_customer_values_live_only_in_the_gke_overlay(gke: list[KubeObject]) -> None:
    site_folder = MANIFESTS_DIR / "overlays" / "gke"
    leaks = []
    for path in MANIFESTS_DIR.rglob("*"):
        if path.is_file() and site_folder not in path.parents:
            text = path.read_text()
            leaks += [f"{path.relative_to(MANIFESTS_DIR)}: {v}" for v in CUSTOMER_VALUES if v in text.lower()]
    assert not leaks, leaks
    text = yaml.safe_dump_all(gke)
    assert all(value in text for value in CUSTOMER_VALUES)


def test_documented_kubectl_kustomize_is_the_source_of_truth() -> None:
    readme = (MANIFESTS_DIR / "README.md").read_text()
    assert "kubectl kustomize manifests/overlays/" in readme
    assert Path(MANIFESTS_DIR / "overlays" / "gke" / "kustomization.yaml").is_file()


# the design document's scale target: 25-100 concurrent calls at launch, every one recorded
DESIGN_PEAK_CALLS = 100


def _egress_recordings_per_pod(deployment: KubeObject) -> int:
    """How many recordings one Egress pod admits. Egress prices an audio-only room composite at
    a whole core by default (one call per 2-CPU pod); the pinned v1.13.0 reads
    audio_room_composite_cpu_cost for it, SDK source or not (sdk_audio_room_composite_cpu_cost
    only from v1.14.1), so the dearer of the two decides."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    costs = _config_body(container, "EGRESS_CONFIG_BODY", {"RECORDINGS_BUCKET": "b"})["cpu_cost"]
    cost = max(costs["audio_room_composite_cpu_cost"], costs.get("sdk_audio_room_composite_cpu_cost", 0))
    cores = _quantity(container["resources"]["requests"]["cpu"])
    return int(cores * costs["max_cpu_utilization"] / cost + 1e-9)


def test_egress_records_the_design_peak_with_a_pod_down(gke: list[KubeObject]) -> None:
    """Every call is recorded: a recording Egress refuses for lack of room is a call with no
    audio. The design's peak of 100 concurrent calls must fit while one Egress pod is away
    (crashed, or still finishing its recordings after a rollout)."""
    deployment = find(gke, "Deployment", "livekit-egress")
    per_pod = _egress_recordings_per_pod(deployment)
    assert (deployment["spec"]["replicas"] - 1) * per_pod >= DESIGN_PEAK_CALLS, (
        f"{deployment['spec']['replicas']} Egress pods x {per_pod} recordings, one away, record fewer than "
        f"the design's {DESIGN_PEAK_CALLS} concurrent calls"
    )
    # memory: Egress admits on CPU only (max_memory unset); a recording must not run the pod out
    memory = _quantity(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"])
    assert memory / per_pod >= 128 * 2**20, "under 128 MiB per admitted recording"


def test_capacity_doc_states_the_egress_figures(gke: list[KubeObject]) -> None:
    deployment = find(gke, "Deployment", "livekit-egress")
    replicas, per_pod = deployment["spec"]["replicas"], _egress_recordings_per_pod(deployment)
    doc = (MANIFESTS_DIR.parent / "docs" / "capacity.md").read_text()
    egress_row = next(line for line in doc.splitlines() if line.startswith("| LiveKit Egress"))
    assert f"{replicas} x 2 CPU / 4Gi" in egress_row, egress_row
    assert f"{per_pod} per pod" in egress_row and f"**{replicas * per_pod} recorded calls**" in egress_row


# --- Autopilot: calls in flight outlive GKE's own evictions ---------------------------------------

# The pods a call runs through while it lasts. GKE Autopilot gives a pod at most 1 hour on a node
# upgrade and 10 minutes on a scale-down, whatever terminationGracePeriodSeconds says; with this
# annotation it leaves the pod alone for up to 7 days ("extended duration" pods).
CALL_CARRYING = {"agent", "livekit-server", "livekit-sip", "livekit-egress"}
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
# Autopilot raises the minimum requests of extended-duration pods above its usual 50m / 52 MiB
# (GKE "Resource requests in Autopilot", workload separation and extended duration; the table
# says 0.5 vCPU). This floor sits at or above it, so Autopilot never silently raises (and bills)
# what the manifests say.
EXTENDED_DURATION_FLOOR = {"cpu": 1.0, "memory": 2 * 2**30}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_call_carrying_pods_are_extended_duration_pods(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    seen = set()
    for workload, template in _pods(rendered[overlay]):
        annotations = template["metadata"].get("annotations", {})
        if _name(workload) not in CALL_CARRYING:
            assert SAFE_TO_EVICT not in annotations, f"{_name(workload)} carries no call: let Autopilot move it"
            continue
        seen.add(_name(workload))
        assert annotations.get(SAFE_TO_EVICT) == "false", (
            f"{workload['metadata']['name']}: a node upgrade would cut its calls after 1 hour, a scale-down after 10 min"
        )
        spec = template["spec"]
        # Autopilot refuses extended duration to Spot pods and to pods with inter-pod affinity
        assert "cloud.google.com/gke-spot" not in spec.get("nodeSelector", {}), workload["metadata"]["name"]
        affinity = spec.get("affinity", {})
        assert "podAffinity" not in affinity and "podAntiAffinity" not in affinity, workload["metadata"]["name"]
        for c in spec["containers"]:
            requests = c["resources"]["requests"]
            for kind, floor in EXTENDED_DURATION_FLOOR.items():
                assert _quantity(requests[kind]) >= floor, f"{workload['metadata']['name']}/{c['name']} {kind}"
    assert seen == CALL_CARRYING


def test_rollout_doc_names_the_maintenance_policy() -> None:
    doc = (MANIFESTS_DIR.parent / "docs" / "rollout.md").read_text()
    for needed in (SAFE_TO_EVICT, "--maintenance-window-start", "--add-maintenance-exclusion-scope"):
        assert needed in doc, f"docs/rollout.md does not say {needed}"


@pytest.mark.parametrize("overlay", RENDERS)
def test_scratch_volumes_fit_the_ephemeral_storage_request(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    """Disk-backed emptyDirs count against ephemeral storage, which Autopilot enforces (evicting
    the pod); memory-backed ones count against the memory limit."""
    for workload, template in _pods(rendered[overlay]):
        spec = template["spec"]
        disk = sum(
            _quantity(v["emptyDir"].get("sizeLimit", "0"))
            for v in spec.get("volumes", [])
            if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"
        )
        memory = sum(
            _quantity(v["emptyDir"]["sizeLimit"])
            for v in spec.get("volumes", [])
            if "emptyDir" in v and v["emptyDir"].get("medium") == "Memory"
        )
        requests = {k: _quantity(v) for k, v in spec["containers"][0]["resources"]["requests"].items() if k != GPU}
        # Autopilot's default ephemeral storage is 1 GiB when none is requested
        assert disk <= requests.get("ephemeral-storage", 2**30), (
            f"{_name(workload)}: emptyDirs exceed ephemeral storage"
        )
        assert memory < requests["memory"] / 2, f"{_name(workload)}: /dev/shm takes most of the memory limit"
