"""Rendering the k8s/ overlays and reading what a pod would get (no tests here).

Shared by the manifest checks (tests/test_k8s.py) and the local cluster tests
(tests/test_cluster.py), which run the flow StatefulSet's own command with the environment its
pods get, so what is tested is what is deployed.
"""

from __future__ import annotations

import base64
import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
FLOW = "plateflow-flow"

Doc = dict[str, Any]


@functools.cache
def render(target: str) -> tuple[Doc, ...]:
    """``kubectl kustomize`` of ``k8s/overlays/<target>`` (or ``base``), as parsed documents."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not installed; it renders the k8s/ overlays (kustomize)")
    path = K8S / "base" if target == "base" else K8S / "overlays" / target
    done = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def find(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(doc: Doc) -> Doc | None:
    """The pod template's spec of a workload (CronJobs through their job template)."""
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def pod_labels(doc: Doc) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]
    return doc["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Container:
    workload: Doc
    spec: Doc

    @property
    def name(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}/{self.spec['name']}"


def containers(docs: tuple[Doc, ...]) -> Iterator[Container]:
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            for c in spec.get("initContainers", []) + spec["containers"]:
                yield Container(doc, c)


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (``matchLabels`` / ``matchExpressions``, or a plain map as in a
    Service) selects ``labels``."""
    match = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if any(labels.get(k) != v for k, v in match.items() if k != "matchExpressions"):
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def secret_value(docs: tuple[Doc, ...], name: str, key: str) -> str | None:
    """A Secret's value as rendered (generated names carry a hash suffix; kustomize rewrote
    the references), or ``None`` if the render has no such Secret (an external one)."""
    for doc in find(docs, "Secret"):
        if re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", doc["metadata"]["name"]):
            if key in doc.get("stringData", {}):
                return str(doc["stringData"][key])
            return base64.b64decode(doc["data"][key]).decode()
    return None


def container_env(
    docs: tuple[Doc, ...],
    container: Container,
    *,
    pod_name: str = "pod-0",
    namespace: str = "default",
    external: dict[tuple[str, str], str] | None = None,
) -> dict[str, str]:
    """The environment the container starts with: its ConfigMaps (``envFrom``), then its own
    ``env`` with field references (pod name, namespace) and Secret keys resolved. ``external``
    supplies the values of Secrets the render does not contain (prod's, made out of band)."""
    env: dict[str, str] = {}
    for source in container.spec.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        env |= {str(k): str(v) for k, v in one(docs, "ConfigMap", ref)["data"].items()}
    for item in container.spec.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            env[item["name"]] = {"metadata.name": pod_name, "metadata.namespace": namespace}[path]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secret_value(docs, ref["name"], ref["key"])
            if value is None:
                value = (external or {})[(ref["name"], ref["key"])]
            env[item["name"]] = value
        else:
            raise AssertionError(f"{container.name}: unsupported valueFrom {source}")
    return env


def flow_command(target: str = "dev") -> list[str]:
    """The flow StatefulSet's container command line, as the pods run it."""
    sts = one(render(target), "StatefulSet", FLOW)
    spec = sts["spec"]["template"]["spec"]["containers"][0]
    return list(spec.get("command", [])) + list(spec.get("args", []))


def flow_pod_env(target: str, ordinal: int, namespace: str = "plateflow-dev") -> dict[str, str]:
    """The environment of flow pod ``ordinal`` of the rendered overlay."""
    docs = render(target)
    sts = one(docs, "StatefulSet", FLOW)
    container = Container(sts, sts["spec"]["template"]["spec"]["containers"][0])
    return container_env(docs, container, pod_name=f"{FLOW}-{ordinal}", namespace=namespace)
