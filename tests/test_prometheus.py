"""Monitoring: the alert rules (k8s/base/rules.yaml) checked and unit-tested with promtool, the
Grafana dashboard's every expression accepted by promtool, and a real Prometheus scraping two
flow processes and the API, with the rules loaded."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster_support import (
    FlowCluster,
    LocalRedis,
    free_port,
    no_leftover_processes,  # noqa: F401 (autouse)
    plateflow_command,
    preload,
    wait_for,
)
from tests.k8s_support import K8S, OVERLAYS, one, render
from tests.test_cluster import START_S, traffic

pytestmark = pytest.mark.timeout(600)

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
RULES_TEST = Path(__file__).parent / "prometheus" / "rules_test.yaml"
DASHBOARD = K8S / "base" / "dashboard.json"
needs_prometheus = pytest.mark.skipif(
    PROMTOOL is None or PROMETHEUS is None,
    reason="Debian's prometheus package (prometheus, promtool) is missing; .ci/run installs it",
)
#: Series Prometheus makes itself, not any exposition.
BUILT_IN = {"up"}


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def rule_groups(target: str = "base") -> list[dict[str, Any]]:
    rule = one(render(target), "PrometheusRule", "plateflow")
    return rule["spec"]["groups"]  # type: ignore[no-any-return]


def write_rules(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False))
    return path


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def referenced_metrics(exprs: list[str]) -> set[str]:
    """Metric names in PromQL expressions (our own prefix, plus ``up``)."""
    names = set()
    for expr in exprs:
        names |= set(re.findall(r"\b(plateflow_[a-z0-9_]+|up)\b", expr))
    return names


def rule_exprs() -> list[str]:
    return [r["expr"] for g in rule_groups() for r in g["rules"]]


@needs_prometheus
def test_rules_pass_promtool_check_and_their_unit_tests(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml")
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = {r["alert"] for g in rule_groups() for r in g["rules"]}
    for required in (
        "PlateflowFlowProcessDown",
        "PlateflowConsumerLagGrowing",
        "PlateflowDeadLetterRate",
        "PlateflowAlertLatencyHigh",
        "PlateflowPurgeOverdue",
        "PlateflowAuditChainBroken",
    ):
        assert required in names
    tests = tmp_path / "rules_test.yaml"
    tests.write_text(RULES_TEST.read_text().replace("RULES_FILE", rules.name))
    tested = promtool("test", "rules", str(tests))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # every rule has a unit test
    assert names <= set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))


def test_every_overlay_ships_the_same_rules() -> None:
    for target in OVERLAYS:
        assert rule_groups(target) == rule_groups("base")
        board = one(render(target), "ConfigMap", "plateflow-dashboard")
        assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(board["data"]["plateflow.json"]) == json.loads(DASHBOARD.read_text())


@needs_prometheus
def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    # promtool parses every expression of a rules file: each becomes a recording rule
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"plateflow:dashboard_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # a deliberately broken expression must fail the same way, or this proves nothing
    rules["groups"][0]["rules"].append({"record": "plateflow:broken", "expr": "sum by (x (up)"})
    path.write_text(yaml.safe_dump(rules))
    assert promtool("check", "rules", str(path)).returncode != 0
    needed = {
        "throughput": "plateflow_flow_reads_total",
        "lag per partition": "plateflow_flow_partition_lag_seconds",
        "alert latency": "plateflow_flow_alert_latency_seconds_bucket",
        "match time": "plateflow_flow_match_seconds_bucket",
        "dead letters": "plateflow_sinks_deadletters_total",
        "ingest rate": "plateflow_api_reads_accepted_total",
        "ingest errors": "plateflow_api_reads_rejected_total",
        "stream consumers": "plateflow_flow_partitions_owned",
    }
    for what, name in needed.items():
        assert any(name in e for e in exprs), f"the dashboard has no {what} panel ({name})"


def test_no_metric_is_labelled_by_hotlist_name_except_the_covert_safe_one() -> None:
    """A covert list's name must never reach a label (427.6). Only the flow's alert counter
    is labelled by hotlist, and its sink writes 'covert' for every covert list."""
    from dataflow import _sink

    roots = [Path(__file__).resolve().parent.parent / d for d in ("dataflow", "sinks", "api")]
    labelled = []
    for root in roots:
        for path in root.glob("_metrics.py"):
            labelled += re.findall(r'\[([^\]]*"hotlist"[^\]]*)\]', path.read_text())
    assert labelled == ['"hotlist", "kind"'], labelled
    assert _sink.COVERT_LABEL == "covert"


# -- a real Prometheus ---------------------------------------------------------------------


class Prometheus:
    def __init__(self, directory: Path, scrape: dict[str, list[str]], rules: Path) -> None:
        self.directory = directory
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in scrape.items()
            ],
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        check = promtool("check", "config", str(directory / "prometheus.yml"))
        assert check.returncode == 0, check.stdout + check.stderr
        assert PROMETHEUS is not None
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=(directory / "prometheus.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for("Prometheus to be ready", lambda: self._get("/-/ready"), 60)

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as rsp:
            body = rsp.read().decode()
        return json.loads(body) if body.startswith("{") else body

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert data["status"] == "success", data
        return data["data"]["result"]  # type: ignore[no-any-return]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def exposition(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[LocalRedis, dict[str, str], int]]:
    server = LocalRedis(tmp_path / "redis").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATEFLOW_", "BYTEWAX_"))}
    env |= {
        "PLATEFLOW_REDIS_URL": server.url("api"),
        "PLATEFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'records.db'}",
        "PLATEFLOW_DATA_DIR": str(tmp_path / "data"),
        "PLATEFLOW_API_HOST": "127.0.0.1",
        "PLATEFLOW_API_PORT": str(port),
    }
    # the CronJobs' commands, for real: they leave the outcome files the API turns into gauges
    for job in (
        ["job", "retention-purge", "--", "retention", "purge"],
        ["job", "audit-verify", "--", "audit", "verify", "--scheduled"],
    ):
        done = subprocess.run(
            plateflow_command(["plateflow", *job]),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    proc = subprocess.Popen(
        plateflow_command(["plateflow", "serve"]),
        env=env,
        stdout=(tmp_path / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            "the API's /healthz",
            lambda: "ok" in exposition(f"http://127.0.0.1:{port}/healthz"),
            120,
        )
        yield server, env, port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        server.stop()


@needs_prometheus
def test_real_prometheus_scrapes_the_flow_processes_and_the_api(
    api: tuple[LocalRedis, dict[str, str], int], tmp_path: Path
) -> None:
    server, env, api_port = api
    admin = server.client()
    preload(admin, traffic(3), 20_000)
    flow = FlowCluster(
        2,
        server.url("flow"),
        Path(env["PLATEFLOW_DATA_DIR"]),
        env["PLATEFLOW_DATABASE_URL"],
        tmp_path / "work",
    ).start()
    prometheus = None
    try:
        for i in (0, 1):
            flow.wait_until(f"flow process {i}'s /metrics", lambda i=i: flow.metrics(i), START_S)
        targets = {
            "flow": [f"127.0.0.1:{p}" for p in flow.metrics_ports],
            "api": [f"127.0.0.1:{api_port}"],
        }
        # every exposition passes promtool's lint
        for url in [f"http://{t}/metrics" for ts in targets.values() for t in ts]:
            text = exposition(url)
            linted = promtool("check", "metrics", stdin=text)
            assert linted.returncode == 0, f"{url}: {linted.stdout}{linted.stderr}"
        exposed = {
            name
            for ts in targets.values()
            for t in ts
            for name in re.findall(r"^# TYPE (\S+)", exposition(f"http://{t}/metrics"), re.M)
        }
        # every metric the rules and the dashboard use exists (histograms as name_bucket)
        for name in referenced_metrics(rule_exprs() + dashboard_exprs()) - BUILT_IN:
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in exposed or base in exposed, f"{name} is used but nothing exposes it"

        rules = write_rules(tmp_path / "rules.yaml")
        prometheus = Prometheus(tmp_path, targets, rules)
        wait_for(
            "both flow processes and the API up",
            lambda: prometheus.value("count(up == 1)") == 3,
            60,
        )
        wait_for(
            "12 partitions owned across the cluster",
            lambda: prometheus.value("sum(plateflow_flow_partitions_owned)") == 12,
            60,
        )
        assert prometheus.value("count(plateflow_flow_partition_lag_seconds)") == 12
        assert prometheus.value('max(plateflow_job_last_run_ok{name="retention-purge"})') == 1
        assert prometheus.value('max(plateflow_job_last_run_ok{name="audit-verify"})') == 1
        wait_for(
            "reads counted",
            lambda: (prometheus.value("sum(plateflow_flow_reads_total)") or 0) > 0,
            60,
        )
        loaded = prometheus._get("/api/v1/rules")["data"]["groups"]
        assert sum(len(g["rules"]) for g in loaded) == sum(len(g["rules"]) for g in rule_groups())
        assert all(r["health"] == "ok" for g in loaded for r in g["rules"]), loaded

        flow.kill(1)  # a flow process down: the rule sees it (pending for its 2 minutes)
        wait_for(
            "the down process in the rule's expression",
            lambda: prometheus.query('up{job="flow"} == 0'),
            60,
        )

        def pending() -> bool:
            alerts = prometheus._get("/api/v1/alerts")["data"]["alerts"]
            return any(a["labels"]["alertname"] == "PlateflowFlowProcessDown" for a in alerts)

        wait_for("PlateflowFlowProcessDown pending", pending, 60)
    finally:
        flow.kill_all()
        if prometheus is not None:
            prometheus.stop()
        admin.close()


def test_a_covert_list_name_never_reaches_the_metrics(
    redis_client: Any, redis_url: str, data_dir: Path
) -> None:
    from bytewax.testing import run_main
    from prometheus_client import REGISTRY, generate_latest

    from dataflow import FlowConfig, FlowOptions, build_flow
    from plateflow.settings import Settings
    from sinks import append_reads
    from tests.test_flow import COVERT, STOLEN, holder_for, read

    settings = Settings.load({}, data_dir=str(data_dir), partitions="2")
    append_reads(redis_client, [read(1, "6DEF456"), read(2, "7ABC123", state="CA")], 2)
    flow = build_flow(
        FlowConfig.from_settings(settings),
        redis_url,
        holder_for(STOLEN, COVERT),
        FlowOptions(drain=True, flush_s=0.2),
    )
    run_main(flow)
    text = generate_latest(REGISTRY).decode()
    assert 'plateflow_flow_alerts_total{hotlist="covert",kind="exact"}' in text
    assert 'plateflow_flow_alerts_total{hotlist="stolen",kind="exact"}' in text
    assert COVERT.name not in text


def test_every_alert_links_a_runbook_section_that_exists() -> None:
    runbook = (Path(__file__).resolve().parent.parent / "docs" / "runbook.md").read_text()
    # GitHub's anchors: lower case, spaces to '-', punctuation dropped
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    for group in rule_groups():
        for rule in group["rules"]:
            page, _, anchor = rule["annotations"]["runbook"].partition("#")
            assert page == "docs/runbook.md" and anchor in anchors, rule["alert"]
