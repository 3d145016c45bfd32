"""A real Kubernetes control plane on loopback: etcd and kube-apiserver, built from their Go
modules by scripts/setup.sh (scripts/kube-build), started the way controller-runtime's envtest
starts them; the rollout's tests and the local stack use it. No controller-manager, scheduler or
kubelet runs: objects are stored, validated, defaulted and field-managed exactly as on a cluster,
but nothing reconciles them (tests set a workload's status themselves, as its controller and
kubelet would; on the local stack workloads never start).

The serving certificate, the service-account signing key and the token of the one user
(in ``system:masters``) are generated at start; the kubeconfig written for its clients trusts that
CA and presents that token."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = REPO_ROOT / ".local" / "bin"
CONTEXT = "real-apiserver"
USER = "rollout-tests"

# The CRDs the manifests use, from their modules' own YAML at pinned versions (never copied by
# hand). Gateway API: the standard channel; GKE 1.34 serves gateway.networking.k8s.io/v1.
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.3.0"
# What the manifests use that no Go module reachable here defines: the module proxy refuses
# STUNner's (github.com/l7mp/stunner-gateway-operator: 403), and GKE's gateway policies
# (networking.gke.io GCPBackendPolicy, HealthCheckPolicy) are in no published module
# (github.com/GoogleCloudPlatform/gke-networking-api holds only GKE's multi-network CRDs).
NOT_INSTALLABLE = {
    ("stunner.l7mp.io", "GatewayConfig"): "STUNner's operator module is refused by the Go module proxy here",
    ("stunner.l7mp.io", "UDPRoute"): "STUNner's operator module is refused by the Go module proxy here",
    ("networking.gke.io", "GCPBackendPolicy"): "GKE's gateway policy CRDs are in no published Go module",
    ("networking.gke.io", "HealthCheckPolicy"): "GKE's gateway policy CRDs are in no published Go module",
}


class ControlPlaneUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not os.access(path, os.X_OK):
        raise ControlPlaneUnavailable(
            f"{path} is missing: scripts/setup.sh builds etcd and kube-apiserver from scripts/kube-build "
            "(once per machine, cached in ~/.cache/callcenter/bin)"
        )
    return path


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, the API server's serving certificate for 127.0.0.1/localhost, and the RSA key
    pair service-account tokens are signed with."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rollout-tests-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "apiserver.crt": server.public_bytes(serialization.Encoding.PEM),
        "apiserver.key": _pem_key(server_key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    out = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        out[name] = path
    return out


@dataclass
class ControlPlane:
    workdir: Path
    etcd: subprocess.Popen | None = None
    apiserver: subprocess.Popen | None = None
    url: str = ""
    token: str = ""
    kubeconfig: Path | None = None
    ca_file: Path | None = None

    def start(self, timeout_s: float = 90.0) -> ControlPlane:
        etcd_bin, apiserver_bin = binary("etcd"), binary("kube-apiserver")
        pki = self.workdir / "pki"
        pki.mkdir(parents=True)
        certs = _certificates(pki)
        self.ca_file = certs["ca.crt"]
        self.token = secrets.token_hex(24)
        tokens = pki / "tokens.csv"
        tokens.write_text(f'{self.token},{USER},{USER},"system:masters"\n')
        tokens.chmod(0o600)

        client_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        logs = self.workdir / "logs"
        logs.mkdir()
        self.etcd = subprocess.Popen(
            [
                str(etcd_bin),
                "--name=rollout-tests",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=rollout-tests={peer_url}",
                "--unsafe-no-fsync",  # test data: durability buys nothing, fsync costs seconds
                "--log-level=warn",
            ],
            stdout=(logs / "etcd.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"https://127.0.0.1:{api_port}"
        self.apiserver = subprocess.Popen(
            [
                str(apiserver_bin),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={certs['apiserver.crt']}",
                f"--tls-private-key-file={certs['apiserver.key']}",
                f"--client-ca-file={certs['ca.crt']}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs['sa.pub']}",
                f"--service-account-signing-key-file={certs['sa.key']}",
                "--allow-privileged=true",
                # no node runs here: the 'kubernetes' Service's endpoints would name a loopback address
                "--endpoint-reconciler-type=none",
                "--v=0",
            ],
            stdout=(logs / "kube-apiserver.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": CONTEXT, "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}
                    ],
                    "users": [{"name": USER, "user": {"token": self.token}}],
                    "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": USER}}],
                    "current-context": CONTEXT,
                }
            )
        )
        self._wait_ready(timeout_s)
        return self

    def _request(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout_s) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for name, proc in (("etcd", self.etcd), ("kube-apiserver", self.apiserver)):
                if proc is not None and proc.poll() is not None:
                    raise ControlPlaneUnavailable(
                        f"{name} exited with {proc.returncode} at start: {self.log_tail(name)}"
                    )
            try:
                status, body = self._request("/readyz")
                if status == 200:
                    return
                last = f"/readyz {status}: {body[-500:]}"
            except OSError as e:
                last = str(e)
            time.sleep(0.25)
        raise ControlPlaneUnavailable(
            f"kube-apiserver not ready after {timeout_s:g} s ({last}): {self.log_tail('kube-apiserver')}"
        )

    def version(self) -> dict[str, Any]:
        status, body = self._request("/version")
        assert status == 200, body
        return json.loads(body)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.workdir / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def stop(self) -> None:
        for proc in (self.apiserver, self.etcd):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def go_module_dir(module: str, version: str) -> Path:
    """The module's files in the Go module cache, downloaded (and checked against the checksum
    database) if this machine has not fetched them yet."""
    go = shutil.which("go")
    if go is None:
        raise ControlPlaneUnavailable(f"go is not on PATH: needed to fetch {module}@{version} for its CRDs")
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tempfile.mkdtemp(prefix="go-mod-download-"),  # outside any module: go.mod untouched
    )
    info = json.loads(proc.stdout or "{}") if proc.stdout.strip().startswith("{") else {}
    if proc.returncode != 0 or not info.get("Dir"):
        raise ControlPlaneUnavailable(
            f"go mod download {module}@{version} failed: {info.get('Error') or proc.stderr.strip()}"
        )
    return Path(info["Dir"])


def gateway_api_crds() -> list[dict[str, Any]]:
    crd_dir = go_module_dir(GATEWAY_API_MODULE, GATEWAY_API_VERSION) / "config" / "crd" / "standard"
    crds = [
        doc
        for path in sorted(crd_dir.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
    if not crds:
        raise ControlPlaneUnavailable(f"no CustomResourceDefinition under {crd_dir}")
    return crds


def install_crds(kubeconfig: Path, crds: list[dict[str, Any]], timeout_s: float = 60.0) -> None:
    """Server-side apply the CRDs and wait until each is Established."""
    from kubernetes import client, config
    from kubernetes.dynamic import DynamicClient

    api = config.new_client_from_config(config_file=str(kubeconfig), context=CONTEXT)
    try:
        resource = DynamicClient(api).resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
        for crd in crds:
            resource.server_side_apply(body=crd, name=crd["metadata"]["name"], field_manager="callcenter-control-plane")
        extensions = client.ApiextensionsV1Api(api)
        deadline = time.monotonic() + timeout_s
        for crd in crds:
            while True:
                live = extensions.read_custom_resource_definition(crd["metadata"]["name"])
                if any(c.type == "Established" and c.status == "True" for c in (live.status.conditions or [])):
                    break
                if time.monotonic() > deadline:
                    raise ControlPlaneUnavailable(f"CRD {crd['metadata']['name']} not Established after {timeout_s:g} s")
                time.sleep(0.1)
    finally:
        api.close()
