"""The alert rules, the Prometheus configuration and the dashboards, against promtool and a live
``kgc serve``: every series they read must be one kgc really exports."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from ops_helpers import (
    GRAFANA,
    PROMETHEUS,
    SCRAPE_LABELS,
    dashboard_exprs,
    exposition,
    load_yaml_documents,
    metric_names,
    rules,
    selector_labels,
)

# Series of the kubelet's cAdvisor, not kgc's: KgcContainerMemoryHigh reads them, with these labels.
CONTAINER_SERIES = {
    "container_memory_working_set_bytes": {"namespace", "pod", "container"},
    "container_spec_memory_limit_bytes": {"namespace", "pod", "container"},
}

PANEL_TOPICS = {
    "latency": "Transaction latency",
    "hook rate": "Hook execution rate",
    "errors": "Errors",
    "memory": "Memory",
    "cache hit rate": "Condition cache hit rate",
    "queue depth": "Write queue",
    "lockchain lag": "Lockchain anchor lag",
}


def promtool_run(
    promtool: str, *args: str, cwd: Path = PROMETHEUS
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_alert_rules_pass_promtool_check(promtool: str) -> None:
    done = promtool_run(promtool, "check", "rules", "kgc-rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    done = promtool_run(promtool, "test", "rules", "kgc-rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_fails_a_rule_whose_expected_alert_differs(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: the same test file, expecting the runbook's "2.5" where kgc's
    annotation now says "2.5%", is refused."""
    original = (PROMETHEUS / "kgc-rules.test.yml").read_text(encoding="utf-8")
    assert "2.5% of the transactions" in original
    (tmp_path / "kgc-rules.yml").write_bytes((PROMETHEUS / "kgc-rules.yml").read_bytes())
    (tmp_path / "t.yml").write_text(original.replace("2.5% of the", "2.5 of the"), "utf-8")
    done = promtool_run(promtool, "test", "rules", "t.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "HighErrorRate" in done.stdout + done.stderr


def test_example_prometheus_configuration_passes_promtool(promtool: str) -> None:
    done = promtool_run(promtool, "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    config = load_yaml_documents(PROMETHEUS / "prometheus.yml")[0]
    assert [job["job_name"] for job in config["scrape_configs"]] == ["kgc"]
    assert config["rule_files"] == ["kgc-rules.yml"]


def test_every_alert_is_unit_tested_firing() -> None:
    tests = load_yaml_documents(PROMETHEUS / "kgc-rules.test.yml")[0]["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in rules()}
    assert alerts - fired == set()


def test_every_rule_reads_the_job_kgc_or_its_series() -> None:
    for rule in rules():
        names = metric_names(rule["expr"])
        if not names:  # the container-level rule: cAdvisor's series of the kgc container
            assert all(name in rule["expr"] for name in CONTAINER_SERIES), rule["alert"]
            assert 'container="kgc"' in rule["expr"], rule["alert"]
            continue
        if "up" in names:
            assert 'job="kgc"' in rule["expr"], rule["alert"]


def test_dashboard_queries_parse_as_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel query, as a recording rule, passes promtool's PromQL parser."""
    records = [
        {"record": f"kgc_panel:{i}", "expr": expr} for i, (_, expr) in enumerate(dashboard_exprs())
    ]
    (tmp_path / "panels.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "p", "rules": records}]})
    )
    done = promtool_run(promtool, "check", "rules", "panels.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(records)} rules found" in done.stdout


def test_dashboard_has_a_panel_for_each_topic() -> None:
    titles = {title for title, _ in dashboard_exprs()}
    assert {topic: PANEL_TOPICS[topic] in titles for topic in PANEL_TOPICS} == dict.fromkeys(
        PANEL_TOPICS, True
    )
    for path in GRAFANA.glob("*.json"):
        board = json.loads(path.read_text(encoding="utf-8"))
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name


def named_series() -> dict[str, set[str]]:
    """Every kgc series named anywhere in deploy/, by where it is named."""
    where: dict[str, set[str]] = {}

    def add(names: set[str], place: str) -> None:
        for name in names:
            where.setdefault(name, set()).add(place)

    for rule in rules():
        add(metric_names(rule["expr"]), f"alert {rule['alert']}")
    for title, expr in dashboard_exprs():
        add(metric_names(expr), f"panel {title}")
    adapter = load_yaml_documents(PROMETHEUS / "prometheus-adapter-rules.yml")[0]
    for rule in adapter["rules"]:
        add(metric_names(rule["seriesQuery"]), "prometheus-adapter-rules.yml")
    hpa = load_yaml_documents(PROMETHEUS.parent / "kubernetes" / "base" / "hpa.yaml")[0]
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Pods":
            add({metric["pods"]["metric"]["name"]}, "hpa.yaml")
    where.pop("up", None)  # written by Prometheus itself, not by kgc
    return where


def test_every_series_in_rules_panels_and_autoscaling_exists_on_a_live_server(
    live_metrics: str,
) -> None:
    exported = exposition(live_metrics)
    named = named_series()
    assert len(named) >= 20
    missing = {name: sorted(places) for name, places in named.items() if name not in exported}
    assert missing == {}


def test_unit_test_series_are_shaped_like_the_live_exposition(live_metrics: str) -> None:
    """promtool's input series carry the names and label names a scrape of kgc stores."""
    exported = exposition(live_metrics)
    tests = load_yaml_documents(PROMETHEUS / "kgc-rules.test.yml")[0]["tests"]
    for test in tests:
        for item in test["input_series"]:
            selector = item["series"]
            name = selector.partition("{")[0]
            labels = selector_labels(selector)
            assert "job" in labels and "instance" in labels, selector
            if name == "up":
                continue
            if name in CONTAINER_SERIES:
                assert CONTAINER_SERIES[name] <= labels, selector
                continue
            assert name in exported, selector
            assert labels - SCRAPE_LABELS <= exported[name], (selector, exported[name])


@pytest.mark.parametrize("alert", [rule["alert"] for rule in rules()])
def test_alert_annotations_render_ratios_as_percentages(alert: str) -> None:
    rule = next(r for r in rules() if r["alert"] == alert)
    description = rule["annotations"]["description"]
    if any(name in rule["expr"] for name in ("kgc_errors_rate", "memory_usage", "cache_hits")):
        assert "humanizePercentage" in description
    assert "{{ $value }}%" not in description
