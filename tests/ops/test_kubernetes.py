"""The Kubernetes manifests: valid for a pinned Kubernetes version (kubernetes-validate, strict),
the VPA against its written-down schema, the kustomizations consistent, and shaped for kgc's one
writer."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from ops_helpers import KUBERNETES, load_yaml_documents

from kgc.config import load_settings

KUBERNETES_VERSION = "1.32.0"  # the version the manifests are validated against
BASE = KUBERNETES / "base"
PRODUCTION = KUBERNETES / "overlays" / "production"
GREEN = KUBERNETES / "overlays" / "green"
GREEN_PATCHES = {"namespace.yaml", "networkpolicy-clients.yaml"}
VPA_SCHEMA = KUBERNETES / "schemas" / "verticalpodautoscaler-autoscaling.k8s.io-v1.json"
CUSTOM_KINDS = {("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"): VPA_SCHEMA}
Resource = dict[str, Any]


def validate(resource: Resource) -> None:
    """kubernetes-validate (strict: unknown fields refused) or, for the VPA, its schema."""
    custom = CUSTOM_KINDS.get((resource["apiVersion"], resource["kind"]))
    if custom is not None:
        schema = json.loads(custom.read_text(encoding="utf-8"))
        jsonschema.validate(resource, schema)
        return
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def manifest_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")


def kustomization(folder: Path) -> dict[str, Any]:
    return load_yaml_documents(folder / "kustomization.yaml")[0]


def resources_of(folder: Path) -> list[Resource]:
    """The resources a kustomization lists, recursively, as files (no generators are used)."""
    found: list[Resource] = []
    for entry in kustomization(folder).get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            found += resources_of(target)
        else:
            found += load_yaml_documents(target)
    return found


def merge(base: Any, patch: Any, *, strategic: bool) -> Any:
    """A small strategic merge (lists of named items merged by name) or JSON merge (lists
    replaced whole, as kustomize does for custom resources it has no schema for)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base[key], value, strategic=strategic) if key in base else value
        return merged
    named = strategic and isinstance(base, list) and isinstance(patch, list)
    if named and all(isinstance(i, dict) and "name" in i for i in [*base, *patch]):
        by_name = {item["name"]: item for item in base}
        for item in patch:
            by_name[item["name"]] = merge(by_name.get(item["name"], {}), item, strategic=True)
        order = [i["name"] for i in base] + [
            i["name"] for i in patch if i["name"] not in {b["name"] for b in base}
        ]
        return [by_name[name] for name in order]
    return copy.deepcopy(patch)


def key(resource: Resource) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def production_by_yaml_merge() -> dict[tuple[str, str], Resource]:
    """The production overlay applied by ``merge``: its patches onto the base's resources."""
    rendered = {key(r): copy.deepcopy(r) for r in resources_of(PRODUCTION)}
    for patch_entry in kustomization(PRODUCTION)["patches"]:
        patch = load_yaml_documents(PRODUCTION / patch_entry["path"])[0]
        target = rendered[key(patch)]
        strategic = (target["apiVersion"], target["kind"]) not in CUSTOM_KINDS
        rendered[key(patch)] = merge(target, patch, strategic=strategic)
    return rendered


def kubectl_kustomize(folder: Path) -> list[Resource]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: kustomize output is checked by the YAML merge only")
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.mark.parametrize(
    "path",
    [*manifest_files(BASE), *manifest_files(PRODUCTION), *manifest_files(GREEN)],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_manifest_file_is_valid(path: Path) -> None:
    if path.parent == GREEN and path.name in GREEN_PATCHES:
        return  # patches are partial; the rendered overlay is validated below
    for resource in load_yaml_documents(path):
        if path.parent == PRODUCTION and path.name != "namespace.yaml":
            continue  # patches are partial; the merged results are validated below
        validate(resource)


def test_kustomizations_name_files_that_exist() -> None:
    for folder in (BASE, PRODUCTION, GREEN):
        spec = kustomization(folder)
        entries = [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []))]
        assert entries
        for entry in entries:
            assert (folder / entry).exists(), f"{folder.name}/kustomization.yaml: {entry}"


def test_every_base_manifest_except_the_example_secret_is_deployed() -> None:
    listed = set(kustomization(BASE)["resources"])
    assert {p.name for p in manifest_files(BASE)} - listed == {"secret.example.yaml"}


def test_production_patches_apply_to_resources_of_the_base() -> None:
    names = {key(r) for r in resources_of(PRODUCTION)}
    for entry in kustomization(PRODUCTION)["patches"]:
        patch = load_yaml_documents(PRODUCTION / entry["path"])[0]
        assert key(patch) in names, entry["path"]


def test_production_overlay_merged_in_yaml_is_valid() -> None:
    rendered = production_by_yaml_merge()
    for resource in rendered.values():
        validate(resource)
    statefulset = rendered["StatefulSet", "kgc"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"] for item in container["env"]}
    assert {"KGC_CONFIG_FILE", "KGC_HOST", "KGC_OBSERVABILITY_ENDPOINT"} <= env
    assert container["resources"]["limits"]["memory"] == "3Gi"


def test_production_vpa_keeps_its_controlled_resources() -> None:
    """A CRD patch replaces lists whole: the overlay must repeat the container policy."""
    vpa = production_by_yaml_merge()["VerticalPodAutoscaler", "kgc"]
    policy = vpa["spec"]["resourcePolicy"]["containerPolicies"][0]
    assert policy["controlledResources"] == ["cpu", "memory"]
    assert policy["maxAllowed"]["memory"] == "8Gi"


@pytest.mark.parametrize("folder", [BASE, PRODUCTION, GREEN], ids=["base", "production", "green"])
def test_kubectl_kustomize_output_is_valid(folder: Path) -> None:
    rendered = kubectl_kustomize(folder)
    kinds = sorted(r["kind"] for r in rendered)
    assert kinds.count("StatefulSet") == 1 and "Deployment" not in kinds
    for resource in rendered:
        validate(resource)


def test_yaml_merge_agrees_with_kubectl_kustomize() -> None:
    ours = production_by_yaml_merge()
    for resource in kubectl_kustomize(PRODUCTION):
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "kgc-production", key(resource)
        if "spec" in resource:
            expected = ours[key(resource)]["spec"]
            if resource["kind"] == "StatefulSet":
                expected = copy.deepcopy(expected)
                container = expected["template"]["spec"]["containers"][0]
                container["image"] = "registry.example.com/kgc:0.1.0"
            assert _sorted_env(resource["spec"]) == _sorted_env(expected), key(resource)


def _sorted_env(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for container in spec.get("template", {}).get("spec", {}).get("containers", []):
        container["env"] = sorted(container.get("env", []), key=lambda e: e["name"])
    return spec


def test_strict_validation_refuses_a_misspelled_field() -> None:
    """The validator is not a formality: a typo in a probe is an error."""
    statefulset = load_yaml_documents(BASE / "statefulset.yaml")[0]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(statefulset)
    vpa = load_yaml_documents(BASE / "vpa.yaml")[0]
    vpa["spec"]["updatePolicy"]["updateMode"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError):
        validate(vpa)


def base_resources() -> dict[tuple[str, str], Resource]:
    return {key(r): r for r in resources_of(BASE)}


def test_one_writer_statefulset_with_probes_on_health_and_ready() -> None:
    resources = base_resources()
    assert not [k for k in resources if k[0] == "Deployment"]
    spec = resources["StatefulSet", "kgc"]["spec"]
    assert spec["replicas"] == 1
    assert spec["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert pod["securityContext"]["runAsUser"] == 1001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == {"/app/data": False, "/app/config": True, "/app/secrets": True, "/tmp": False}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KGC_HOST"] == "0.0.0.0"


def test_autoscalers_never_run_a_second_writer() -> None:
    resources = base_resources()
    hpa = resources["HorizontalPodAutoscaler", "kgc"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "kgc"}
    assert hpa["maxReplicas"] == 1
    metrics = [
        m.get("resource", m.get("pods", {})).get("name") or m["pods"]["metric"]["name"]
        for m in hpa["metrics"]
    ]
    assert metrics == ["cpu", "memory", "kgc_transaction_latency_p99"]
    vpa = resources["VerticalPodAutoscaler", "kgc"]["spec"]
    assert vpa["targetRef"]["kind"] == "StatefulSet"
    assert vpa["updatePolicy"]["updateMode"] in ("Off", "Initial")  # never evicts the writer
    assert resources["PodDisruptionBudget", "kgc"]["spec"]["minAvailable"] == 1


def test_services_and_policies_select_the_pod() -> None:
    resources = base_resources()
    labels = resources["StatefulSet", "kgc"]["spec"]["template"]["metadata"]["labels"]
    for kind, name in (("Service", "kgc"), ("Service", "kgc-headless")):
        assert resources[kind, name]["spec"]["selector"].items() <= labels.items()
    assert resources["StatefulSet", "kgc"]["spec"]["serviceName"] == "kgc-headless"
    policy = resources["NetworkPolicy", "kgc"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 3000}]
    binding = resources["RoleBinding", "kgc"]
    assert binding["roleRef"]["name"] == "kgc"
    assert binding["subjects"][0]["name"] == resources["ServiceAccount", "kgc"]["metadata"]["name"]


def test_configmap_settings_load_in_kgc(tmp_path: Path) -> None:
    """kgc refuses unknown keys at start-up; the shipped kgc.toml must load as meant."""
    text = base_resources()["ConfigMap", "kgc-config"]["data"]["kgc.toml"]
    tomllib.loads(text)
    path = tmp_path / "kgc.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(config_file=path)
    assert settings.strict_mode is True
    assert settings.transaction_timeout_ms == 2000
    assert settings.anchor_batch_size == 100
    assert settings.enable_observability is False


def test_example_secret_is_a_valid_api_keys_file(tmp_path: Path) -> None:
    secret = load_yaml_documents(BASE / "secret.example.yaml")[0]
    path = tmp_path / "api-keys"
    path.write_text(secret["stringData"]["api-keys"], encoding="utf-8")
    roles = load_settings(api_keys_file=path).api_key_roles()
    assert sorted(roles.values()) == ["admin", "read", "write"]


def mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def startup_peak(receipts: int) -> float:
    """MiB at start-up with ``receipts`` one-quad receipts (measured: 75 MiB + 1.4 KiB each;
    7.5 KiB each before recovery stopped holding applied records)."""
    return 75 + receipts * 1.4 / 1024


def test_memory_covers_the_journal_read_at_start_up() -> None:
    """Start-up peaks at about 75 MiB plus 1.4 KiB per one-quad receipt (docs/operations.md).
    Base and production both start with 90,000 and 370,000 receipts with room to spare, and
    the VPA may never recommend less than the request."""
    resources = base_resources()
    container = resources["StatefulSet", "kgc"]["spec"]["template"]["spec"]["containers"][0]
    limit = mebibytes(container["resources"]["limits"]["memory"])
    assert limit >= startup_peak(90_000) + 256
    request = mebibytes(container["resources"]["requests"]["memory"])
    policy = resources["VerticalPodAutoscaler", "kgc"]["spec"]["resourcePolicy"]
    assert mebibytes(policy["containerPolicies"][0]["minAllowed"]["memory"]) >= request

    production = production_by_yaml_merge()
    spec = production["StatefulSet", "kgc"]["spec"]["template"]["spec"]["containers"][0]
    assert mebibytes(spec["resources"]["limits"]["memory"]) >= startup_peak(370_000) + 256
    request = mebibytes(spec["resources"]["requests"]["memory"])
    policy = production["VerticalPodAutoscaler", "kgc"]["spec"]["resourcePolicy"]
    assert mebibytes(policy["containerPolicies"][0]["minAllowed"]["memory"]) >= request


def test_no_prometheus_annotations_beside_the_dns_scrape_job() -> None:
    """prometheus.yml finds the pod by DNS SRV; annotations would invite a second scrape."""
    template = base_resources()["StatefulSet", "kgc"]["spec"]["template"]
    annotations = template["metadata"].get("annotations", {})
    assert not [name for name in annotations if name.startswith("prometheus.io/")]


def test_dns_egress_reaches_kube_dns_and_nodelocal_dns_cache() -> None:
    egress = base_resources()["NetworkPolicy", "kgc"]["spec"]["egress"]
    dns = next(rule for rule in egress if {"protocol": "UDP", "port": 53} in rule["ports"])
    assert {"protocol": "TCP", "port": 53} in dns["ports"]
    peers = dns["to"]
    assert {"ipBlock": {"cidr": "169.254.20.10/32"}} in peers
    system = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    assert system in peers


def test_green_is_a_separate_kgc_in_its_own_namespace() -> None:
    """Blue's Service, PDB and NetworkPolicy select pods of their own namespace only: green in
    kgc-green can never be selected by them, and has its own Service, PDB, claim and Secret."""
    blue = kubectl_kustomize(PRODUCTION)
    green = kubectl_kustomize(GREEN)
    for resource in green:
        validate(resource)
        if resource["kind"] == "Namespace":
            assert resource["metadata"]["name"] == "kgc-green"
        else:
            assert resource["metadata"]["namespace"] == "kgc-green", key(resource)
    assert sorted(key(r) for r in green if r["kind"] != "Namespace") == sorted(
        key(r) for r in blue if r["kind"] != "Namespace"
    )
    statefulset = next(r for r in green if r["kind"] == "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com/kgc:0.2.0"
    secret = next(v for v in pod["volumes"] if v["name"] == "api-keys")["secret"]
    assert secret["secretName"] == "kgc-api-keys"  # created by hand in kgc-green
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    policy = next(r for r in green if r["kind"] == "NetworkPolicy")["spec"]
    clients = policy["ingress"][0]["from"][0]
    assert clients["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kgc-production"
    }
    assert clients["podSelector"]["matchLabels"] == {"kgc.io/client": "true"}


def test_green_restore_pod_mounts_greens_claim_as_uid_1001() -> None:
    (pod,) = load_yaml_documents(GREEN / "restore-pod.yaml")
    assert "restore-pod.yaml" not in kustomization(GREEN)["resources"]
    claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == "data-kgc-0"  # the claim template "data" of StatefulSet "kgc", pod 0
    assert pod["spec"]["securityContext"]["runAsUser"] == 1001
    # Not the StatefulSet's labels: no Service or policy of kgc's may select it.
    assert pod["metadata"]["labels"] != {"app.kubernetes.io/name": "kgc"}
