"""The k8s/ manifests: every overlay renders with ``kubectl kustomize``, validates against the
Kubernetes schemas (kubernetes-validate, strict), and holds the invariants no schema sees."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import validate

from dataflow import BYTEWAX_ENV, resolve_cluster
from plateflow.cli import build_parser
from plateflow.settings import Settings
from tests.k8s_support import (
    FLOW,
    K8S,
    OVERLAYS,
    ROOT,
    Container,
    Doc,
    container_env,
    containers,
    find,
    one,
    pod_labels,
    pod_spec,
    render,
    selects,
)

TARGETS = ("base", *OVERLAYS)
#: Oldest Kubernetes the manifests promise to work on (CronJob timeZone is GA from 1.27), and
#: the kubectl installed here.
K8S_VERSIONS = ("1.29.0", "1.32.0")
#: Prometheus Operator kinds: kubernetes-validate has no schema for custom resources, so these
#: are skipped there and checked below (selectors, ports) and in tests/test_prometheus.py.
CRDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}
#: Routes of Bytewax's API server (bytewax 0.21.1 src/webserver/mod.rs), which serves the flow
#: pods' probes; tests/test_cluster.py scrapes /metrics of real flow processes.
BYTEWAX_ROUTES = {"/metrics", "/dataflow"}
#: Variables Bytewax itself reads (besides the cluster ones of dataflow.BYTEWAX_ENV).
BYTEWAX_API_ENV = {
    "BYTEWAX_DATAFLOW_API_ENABLED",
    "BYTEWAX_DATAFLOW_API_PORT",
    "BYTEWAX_DATAFLOW_API_CACHE_PATH",
}
#: prod's Secrets are created out of band (docs/runbook.md "Deploy"): the keys the manifests
#: expect, with values of the right shape for the settings check.
EXTERNAL_SECRETS = {
    ("plateflow-redis", "flow-url"): "redis://flow:x@redis.example:6379/0",
    ("plateflow-redis", "api-url"): "redis://api:x@redis.example:6379/0",
    ("plateflow-redis", "ingest-url"): "redis://ingest:x@redis.example:6379/0",
    ("plateflow-database", "url"): "postgresql+psycopg://plateflow:x@db.example:5432/plateflow",
    ("plateflow-ingest", "tokens"): "a-camera-token-of-some-length",
}


def _plateflow_containers(docs: tuple[Doc, ...]) -> list[Container]:
    return [c for c in containers(docs) if c.spec.get("command", [""])[0] == "plateflow"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates_strictly(target: str, version: str) -> None:
    docs = render(target)
    checked = 0
    for doc in docs:
        if doc["kind"] in CRDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        validate(doc, version, strict=True)
        checked += 1
    assert checked >= 12


def test_the_validator_is_strict() -> None:
    """A misspelt field must fail, or the test above proves nothing."""
    from kubernetes_validate import ValidationError

    sts = dict(one(render("dev"), "StatefulSet", FLOW))
    sts["spec"] = {**sts["spec"], "podManagmentPolicy": "Parallel"}
    with pytest.raises(ValidationError):
        validate(sts, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("target", OVERLAYS)
def test_flow_cluster_size_is_set_once_and_divides_the_partitions(target: str) -> None:
    docs = render(target)
    sts = one(docs, "StatefulSet", FLOW)
    replicas = sts["spec"]["replicas"]
    namespace = sts["metadata"]["namespace"]
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    service = one(docs, "Service", sts["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    addresses = set()
    for ordinal in range(replicas):
        container = Container(sts, sts["spec"]["template"]["spec"]["containers"][0])
        env = container_env(
            docs, container, pod_name=f"{FLOW}-{ordinal}", namespace=namespace,
            external=EXTERNAL_SECRETS,
        )  # fmt: skip
        settings = Settings.load(env)
        assert settings.cluster_processes == replicas, "replicas not copied into the env"
        cluster = resolve_cluster(
            env,
            cluster_processes=settings.cluster_processes,
            cluster_service=settings.cluster_service,
            cluster_namespace=settings.cluster_namespace,
            cluster_port=settings.cluster_port,
        )
        assert cluster.process_id == ordinal and cluster.processes == replicas
        assert cluster.addresses is not None
        own = cluster.addresses[ordinal]
        service_name = service["metadata"]["name"]
        expected = f"{FLOW}-{ordinal}.{service_name}.{namespace}.svc.cluster.local"
        assert own == f"{expected}:{ports['timely']}"
        addresses.add(cluster.addresses)
        assert settings.partitions % cluster.total_workers == 0, (
            f"{settings.partitions} partitions among {cluster.total_workers} workers"
        )
        assert env["BYTEWAX_DATAFLOW_API_PORT"] == str(ports["metrics"])
    assert len(addresses) == 1, "the pods would not agree on their peers"


@pytest.mark.parametrize("target", OVERLAYS)
def test_every_container_environment_is_real_settings(target: str) -> None:
    docs = render(target)
    for container in _plateflow_containers(docs):
        env = container_env(docs, container, external=EXTERNAL_SECRETS)
        unknown = {
            k for k in env if k.startswith("BYTEWAX_") and k not in {*BYTEWAX_ENV, *BYTEWAX_API_ENV}
        }
        assert not unknown, f"{container.name}: {unknown} are not variables Bytewax reads"
        # Settings.load refuses an unknown PLATEFLOW_* variable and every bad value by name
        settings = Settings.load(env)
        assert settings.database_url, container.name
        # unset, a command that touches Redis would start an embedded one inside the pod
        command = " ".join(container.spec["command"])
        if any(word in command for word in (" run", " serve", "retention compact")):
            assert settings.redis_url, f"{container.name} needs PLATEFLOW_REDIS_URL"
        assert str(settings.data_dir) == "/data"


@pytest.mark.parametrize("target", OVERLAYS)
def test_commands_are_real_plateflow_command_lines(target: str) -> None:
    parser = build_parser()
    seen = set()
    for container in _plateflow_containers(render(target)):
        command = container.spec["command"] + container.spec.get("args", [])
        args = parser.parse_args(command[1:])
        seen.add(args.command)
        if args.command == "job":  # and the command the job runs
            inner = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            assert parser.parse_args(inner).command in ("retention", "audit"), shlex.join(inner)
    assert seen == {"run", "serve", "job"}


def _app_answers(tmp_path: Path) -> set[str]:
    """Paths the real API app routes (asked over HTTP: 404 means no such route)."""
    from fastapi.testclient import TestClient

    from api import create_app

    settings = Settings.load({}, data_dir=str(tmp_path))
    app = create_app(settings, "redis://127.0.0.1:1/0")  # nothing listens: /healthz says 503
    with TestClient(app) as client:
        paths = set(app.openapi()["paths"])
        return {p for p in paths if "{" not in p and client.get(p).status_code != 404}


@pytest.mark.parametrize("target", OVERLAYS)
def test_probes_name_real_ports_and_real_paths(target: str, tmp_path: Path) -> None:
    routes = {"serve": _app_answers(tmp_path), "run": BYTEWAX_ROUTES}
    assert "/healthz" in routes["serve"]
    probed = 0
    for container in containers(render(target)):
        ports = {p["name"] for p in container.spec.get("ports", [])}
        command = container.spec.get("command", [])
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.spec.get(kind)
            if probe is None:
                continue
            probed += 1
            check = probe.get("httpGet") or probe.get("tcpSocket")
            if check is not None and isinstance(check["port"], str):
                assert check["port"] in ports, f"{container.name} {kind} port {check['port']}"
            if "httpGet" in probe:
                assert command[0] == "plateflow", container.name
                path = probe["httpGet"]["path"]
                assert path in routes[command[1]], f"{container.name} {kind}: no route {path}"
        if command[:2] == ["plateflow", "serve"]:
            assert container.spec["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert probed >= 7  # flow: startup, readiness, liveness; api and ingest: two each


@pytest.mark.parametrize("target", TARGETS)
def test_services_and_monitors_select_pods_with_their_ports(target: str) -> None:
    docs = render(target)
    workloads = [d for d in docs if pod_spec(d) is not None]

    def pods_of(selector: dict[str, Any]) -> list[Doc]:
        return [w for w in workloads if selects(selector, pod_labels(w))]

    def port_names(workload: Doc) -> set[str]:
        spec = pod_spec(workload)
        assert spec is not None
        return {p["name"] for c in spec["containers"] for p in c.get("ports", [])}

    for service in find(docs, "Service"):
        pods = pods_of(service["spec"]["selector"])
        assert pods, f"Service {service['metadata']['name']} selects no pods"
        for port in service["spec"]["ports"]:
            for pod in pods:
                assert port["targetPort"] in port_names(pod), (service["metadata"]["name"], port)
    for monitor in find(docs, "PodMonitor"):
        pods = pods_of(monitor["spec"]["selector"])
        assert [p["metadata"]["name"] for p in pods] == [FLOW]
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] in port_names(pods[0])
            assert endpoint["path"] in BYTEWAX_ROUTES
    for monitor in find(docs, "ServiceMonitor"):
        services = [
            s
            for s in find(docs, "Service")
            if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert {s["metadata"]["name"] for s in services} == {"plateflow-api", "plateflow-ingest"}
        for endpoint in monitor["spec"]["endpoints"]:
            assert all(
                endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in services
            )
    for policy in find(docs, "NetworkPolicy"):
        pods = pods_of(policy["spec"]["podSelector"])
        assert pods, f"NetworkPolicy {policy['metadata']['name']} selects no pods"
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                assert any(port["port"] in port_names(p) for p in pods), policy["metadata"]["name"]
    for budget in find(docs, "PodDisruptionBudget"):
        assert pods_of(budget["spec"]["selector"]), budget["metadata"]["name"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_references_resolve(target: str) -> None:
    docs = render(target)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    external = {name for name, _ in EXTERNAL_SECRETS}
    for container in containers(docs):
        for item in container.spec.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                present = ("Secret", ref["name"]) in names
                assert present or (target == "prod" and ref["name"] in external), (
                    f"{container.name}: Secret {ref['name']} is neither rendered nor external"
                )
        for source in container.spec.get("envFrom", []):
            assert ("ConfigMap", source["configMapRef"]["name"]) in names
    for workload in docs:
        spec = pod_spec(workload)
        if spec is None:
            continue
        mounts = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        templates = {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        assert mounts <= set(volumes) | templates, workload["metadata"]["name"]
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in names
            if "secret" in volume:
                secret = volume["secret"]["secretName"]
                assert ("Secret", secret) in names or (target == "prod" and secret in external)
    if target == "prod":  # nothing secret is in the repository's prod overlay
        assert not find(docs, "Secret")
        claim = one(docs, "PersistentVolumeClaim", "plateflow-data")
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_pods_run_locked_down(target: str) -> None:
    docker_user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert docker_user is not None
    for workload in render(target):
        spec = pod_spec(workload)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            if c.get("command", [""])[0] == "plateflow":
                assert spec["securityContext"]["runAsUser"] == int(docker_user.group(1))
                assert (
                    c["image"]
                    == one(render(target), "StatefulSet", FLOW)["spec"]["template"]["spec"][
                        "containers"
                    ][0]["image"]
                )
    # Bytewax's API server writes dataflow.json to its cache path: an emptyDir on a read-only root
    sts = one(render(target), "StatefulSet", FLOW)
    spec = sts["spec"]["template"]["spec"]
    container = spec["containers"][0]
    cache = next(
        e["value"] for e in container["env"] if e["name"] == "BYTEWAX_DATAFLOW_API_CACHE_PATH"
    )
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == cache)
    assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == mount["name"])


def test_prod_spreads_the_flow_and_budgets_disruptions() -> None:
    docs = render("prod")
    sts = one(docs, "StatefulSet", FLOW)
    affinity = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = affinity["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert selects(term["labelSelector"], pod_labels(sts))
    for c in sts["spec"]["template"]["spec"]["containers"]:
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    budget = one(docs, "PodDisruptionBudget", FLOW)
    assert budget["spec"]["maxUnavailable"] == 1
    # prod brings no Redis or PostgreSQL of its own
    assert not [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] != FLOW]


def test_dev_redis_keeps_an_append_only_file_and_the_services_users() -> None:
    docs = render("dev")
    redis_sts = one(docs, "StatefulSet", "redis")
    command = redis_sts["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    acl = (K8S / "overlays" / "dev" / "users.acl").read_text()
    for service in ("flow", "api", "ingest"):
        url = next(v for (n, k), v in _dev_redis_urls(docs).items() if k == f"{service}-url")
        user, password = re.match(r"redis://([^:]+):([^@]+)@", url).groups()  # type: ignore[union-attr]
        assert re.search(rf"^user {user} on >{re.escape(password)} ", acl, re.M), service
    assert re.search(r"^user default off$", acl, re.M)
    assert one(docs, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ].startswith("postgres:")


def _dev_redis_urls(docs: tuple[Doc, ...]) -> dict[tuple[str, str], str]:
    from tests.k8s_support import secret_value

    return {
        ("plateflow-redis", k): secret_value(docs, "plateflow-redis", k) or ""
        for k in ("flow-url", "api-url", "ingest-url")
    }


@pytest.mark.parametrize("target", OVERLAYS)
def test_ingest_reads_its_tokens_file_from_the_mounted_secret(target: str) -> None:
    # A mounted Secret is updated in place by the kubelet (an environment variable is not):
    # the ingest pods re-read the tokens file, so a token is added or revoked without a restart.
    spec = one(render(target), "Deployment", "plateflow-ingest")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert "PLATEFLOW_INGEST_TOKENS" not in env
    path = Path(env["PLATEFLOW_INGEST_TOKENS_FILE"]["value"])
    mount = next(m for m in container["volumeMounts"] if path.parent == Path(m["mountPath"]))
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"].startswith("plateflow-ingest")
    assert path.name == "tokens" and volume["secret"]["defaultMode"] & 0o007 == 0
