"""The chart's checks (`make test-deploy`): helm lint; renders with the
default values, the production-like helm/examples/production.yaml and the
dev toggles; every object validated against the Kubernetes schema of the
newest release kubernetes-validate knows (custom resources against the
strict subsets in schemas/); what every Deployment must have; values that
break the schema refused with a message; k8s/ equal to a fresh rendering;
the Dockerfile's shape.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import chart  # noqa: E402

KUBERNETES = kubernetes_validate.latest_version()
SCHEMAS = pathlib.Path(__file__).parent / "schemas"
CUSTOM_RESOURCES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
    ("gateway.networking.k8s.io/v1", "GRPCRoute"): "grpcroute-gateway.networking.k8s.io-v1.json",
}

DEV_VALUES: dict[str, Any] = {
    "credentials": {"create": True, "jwtSecret": "a-test-secret-of-at-least-32-bytes!!"},
    "dev": {"postgresql": {"enabled": True}, "redis": {"enabled": True}},
}

RENDERINGS: dict[str, list[dict[str, Any]]] = {}
RENDERED: dict[str, dict[str, str]] = {}

# The services of the chart's default values: every list of components the
# checks below use is read from here, never written again.
SERVICES: dict[str, dict[str, Any]] = yaml.safe_load((chart.CHART / "values.yaml").read_text())["services"]
ENABLED = sorted(name for name, service in SERVICES.items() if service.get("enabled", True))
WITH_DATABASE = [name for name in ENABLED if SERVICES[name].get("database")]
ROUTED = [name for name in ENABLED if SERVICES[name].get("area")]


def setUpModule() -> None:
    started = time.monotonic()
    for name, values in [
        ("default", None),
        ("production", chart.load_values("production.yaml")),
        ("dev", DEV_VALUES),
    ]:
        RENDERED[name] = chart.render(values)
        RENDERINGS[name] = chart.objects(RENDERED[name])
    print(f"rendered 3 value sets in {time.monotonic() - started:.1f}s; Kubernetes schemas {KUBERNETES}", file=sys.stderr)


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in (maps merge, everything else replaces)."""
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def rapport_deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Rapport services' Deployments (not the dev databases)."""
    return {
        name: obj
        for name, obj in of_kind(objects, "Deployment").items()
        if obj["metadata"]["labels"]["app.kubernetes.io/name"] == "rapport"
    }


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def env(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = container(deployment)["env"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"duplicate variables in {names}"
    return {entry["name"]: entry for entry in entries}


def port(deployment: dict[str, Any], name: str) -> int:
    ports = {entry["name"]: entry["containerPort"] for entry in container(deployment)["ports"]}
    return ports[name]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects `labels`."""
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    if not all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


# The labels of the namespace every rendering here is installed into.
NAMESPACE_LABELS = {"kubernetes.io/metadata.name": chart.NAMESPACE}


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def connection_allowed(policies: dict[str, dict[str, Any]], source: dict[str, Any], destination: dict[str, Any],
                       port_number: int) -> bool:
    """Whether the NetworkPolicies let a pod of Deployment `source` open a
    TCP connection to a pod of Deployment `destination` on `port_number`
    (after a Service's DNAT: the pod's port), both in the release namespace:
    the source's egress and the destination's ingress must both admit it
    (a pod no policy of that type selects is not isolated). An ipBlock peer
    is taken to match no pod (the examples' CIDRs are outside the pod range)."""
    names = {entry["name"]: entry["containerPort"] for entry in container(destination)["ports"]}

    def ports_admit(rule: dict[str, Any]) -> bool:
        if not rule.get("ports"):
            return True
        for entry in rule["ports"]:
            if entry.get("protocol", "TCP") != "TCP":
                continue
            value = entry.get("port")
            if value is None:
                return True
            number = names.get(value) if isinstance(value, str) else value
            if number is not None and number <= port_number <= entry.get("endPort", number):
                return True
        return False

    def peers_admit(peers: list[dict[str, Any]] | None, labels: dict[str, str]) -> bool:
        if not peers:
            return True
        for peer in peers:
            if "ipBlock" in peer:
                continue
            if "namespaceSelector" in peer and not selects(peer["namespaceSelector"], NAMESPACE_LABELS):
                continue
            if "podSelector" in peer and not selects(peer["podSelector"], labels):
                continue
            return True
        return False

    def admitted(kind: str, pod: dict[str, str], peer_key: str, peer: dict[str, str]) -> bool:
        isolating = []
        for policy in policies.values():
            spec = policy["spec"]
            types = spec.get("policyTypes") or ["Ingress"] + (["Egress"] if "egress" in spec else [])
            if kind in types and selects(spec["podSelector"], pod):
                isolating.append(spec)
        if not isolating:
            return True
        return any(ports_admit(rule) and peers_admit(rule.get(peer_key), peer)
                   for spec in isolating for rule in spec.get(kind.lower(), []))

    source_labels, destination_labels = pod_labels(source), pod_labels(destination)
    return (admitted("Egress", source_labels, "to", destination_labels)
            and admitted("Ingress", destination_labels, "from", source_labels))


def direct_calls(deployments: dict[str, dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(caller, variable) -> address for every <NAME>_<CALLEE>_ADDR the chart
    sets from `calls` (an http:// address; listen addresses have none)."""
    found = {}
    for name, deployment in deployments.items():
        for variable, entry in env(deployment).items():
            if variable.endswith("_ADDR") and str(entry.get("value", "")).startswith("http://"):
                found[(name, variable)] = entry["value"]
    return found


def service_ports(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in service["spec"]["ports"]}


def metrics_service(objects: list[dict[str, Any]], deployment: dict[str, Any]) -> dict[str, Any]:
    """The Service that carries a Deployment's `metrics` port: its own when
    that is a ClusterIP Service, else `<name>-metrics`."""
    services = of_kind(objects, "Service")
    name = deployment["metadata"]["name"]
    if services[name]["spec"]["type"] == "ClusterIP":
        return services[name]
    return services[f"{name}-metrics"]


def gateway_target(raw: str) -> tuple[str, int]:
    """GATEWAY_BACKEND_<AREA> as services/gateway/src/backend.rs parses a
    `dns:` target: `dns:host:port` (also `dns:///host:port`)."""
    assert raw.startswith("dns:"), raw
    host, _, port_text = raw.removeprefix("dns:").lstrip("/").rpartition(":")
    assert host and port_text.isdigit() and 0 < int(port_text) < 65536, raw
    return host, int(port_text)


def milliseconds(duration: str) -> int:
    """A kit duration (`500ms`, `20s`, `5m`; services/kit/src/config.rs
    parse_duration) in milliseconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", duration)
    assert match, duration
    factor = {"ms": 1, "s": 1000, None: 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[match.group(2)]
    return int(match.group(1)) * factor


def seconds(duration: str) -> int:
    """A kit duration (`20s`, `5m`) in whole seconds."""
    return milliseconds(duration) // 1000


# How long cluster DNS may keep answering with a pod that left its Service's
# endpoints: CoreDNS's default TTL for Service records (README, values.yaml
# `routing.dnsTtl`).
DNS_TTL_MS = 5000


class Lint(unittest.TestCase):
    def test_lint_finds_no_warnings_or_errors(self) -> None:
        for name, values in [("default", None), ("production", chart.load_values("production.yaml")), ("dev", DEV_VALUES)]:
            with self.subTest(values=name):
                report = helm.lint(chart.CHART, values, strict=True, kube_version=f"v{KUBERNETES}")
                problems = [message for message in report["messages"] if message["severity"] >= 2]
                self.assertEqual(problems, [], f"helm lint with {name} values")
                self.assertEqual(report["errors"], [])

    def test_chart_app_version_is_the_workspace_version(self) -> None:
        with open(chart.ROOT / "Cargo.toml", "rb") as file:
            workspace = tomllib.load(file)["workspace"]["package"]["version"]
        metadata = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
        self.assertEqual(metadata["appVersion"], workspace)


class Schemas(unittest.TestCase):
    def test_every_object_is_valid_for_kubernetes(self) -> None:
        for rendering, objects in RENDERINGS.items():
            for obj in objects:
                kind, name = obj["kind"], obj["metadata"]["name"]
                with self.subTest(rendering=rendering, object=f"{kind}/{name}"):
                    custom = CUSTOM_RESOURCES.get((obj["apiVersion"], kind))
                    if custom:
                        schema = json.loads((SCHEMAS / custom).read_text())
                        jsonschema.Draft7Validator(schema).validate(obj)
                    else:
                        try:
                            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
                        except kubernetes_validate.ValidationError as error:
                            path = ".".join(str(part) for part in error.path)
                            self.fail(f"{kind}/{name} ({rendering}): {path}: {error.message}")
                        except kubernetes_validate.SchemaNotFoundError as error:
                            self.fail(f"{kind}/{name} ({rendering}): {error.message}")

    def test_production_renders_every_optional_kind(self) -> None:
        kinds = {obj["kind"] for obj in RENDERINGS["production"]}
        expected = {"Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                    "Job", "Ingress", "GRPCRoute", "ServiceMonitor", "NetworkPolicy"}
        self.assertLessEqual(expected, kinds)
        self.assertNotIn("Secret", kinds, "production credentials come from existing Secrets")
        self.assertNotIn("ConfigMap", kinds)

    def test_custom_resource_schemas_refuse_unknown_fields(self) -> None:
        for (api_version, kind), file in CUSTOM_RESOURCES.items():
            rendered = next(obj for obj in RENDERINGS["production"] if obj["kind"] == kind)
            schema = json.loads((SCHEMAS / file).read_text())
            broken = copy.deepcopy(rendered)
            broken["spec"]["unknownField"] = True
            with self.subTest(kind=kind), self.assertRaises(jsonschema.ValidationError):
                jsonschema.Draft7Validator(schema).validate(broken)
        route = copy.deepcopy(next(obj for obj in RENDERINGS["production"] if obj["kind"] == "GRPCRoute"))
        del route["spec"]["rules"][0]["backendRefs"][0]["port"]
        schema = json.loads((SCHEMAS / CUSTOM_RESOURCES[("gateway.networking.k8s.io/v1", "GRPCRoute")]).read_text())
        with self.assertRaises(jsonschema.ValidationError, msg="a Service backend must name its port"):
            jsonschema.Draft7Validator(schema).validate(route)

    def test_the_kubernetes_schema_check_can_fail(self) -> None:
        deployment = copy.deepcopy(next(iter(rapport_deployments(RENDERINGS["default"]).values())))
        container(deployment)["readinessProbe"]["grpc"]["port"] = "grpc"
        with self.assertRaises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


class Deployments(unittest.TestCase):
    """What every Rapport Deployment must have, in every rendering."""

    def each(self) -> list[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
        """(rendering, its objects, a Deployment) for every Rapport Deployment."""
        found = []
        for rendering in ("default", "production", "dev"):
            objects = RENDERINGS[rendering]
            deployments = rapport_deployments(objects)
            self.assertEqual({d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments.values()},
                             set(ENABLED))
            found.extend((rendering, objects, deployment) for deployment in deployments.values())
        return found

    def test_secure_by_default(self) -> None:
        for rendering, _, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                pod = deployment["spec"]["template"]["spec"]
                self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
                self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
                self.assertFalse(pod["automountServiceAccountToken"])
                security = container(deployment)["securityContext"]
                self.assertTrue(security["readOnlyRootFilesystem"])
                self.assertFalse(security["allowPrivilegeEscalation"])
                self.assertEqual(security["capabilities"], {"drop": ["ALL"]})
                self.assertTrue(security["runAsNonRoot"])

    def test_one_image_serving_the_component(self) -> None:
        for rendering, objects, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
                self.assertEqual(container(deployment)["args"], ["serve", component])
                images = {container(d)["image"] for d in rapport_deployments(objects).values()}
                self.assertEqual(len(images), 1, images)

    def test_listens_on_every_interface_on_its_container_ports(self) -> None:
        for rendering, objects, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
                variables = env(deployment)
                prefix = component.upper()
                self.assertEqual(variables[f"{prefix}_ADDR"]["value"], f"0.0.0.0:{port(deployment, 'grpc')}")
                self.assertEqual(variables[f"{prefix}_METRICS_ADDR"]["value"], f"0.0.0.0:{port(deployment, 'metrics')}")
                labels = deployment["spec"]["template"]["metadata"]["labels"]
                service = of_kind(objects, "Service")[deployment["metadata"]["name"]]
                self.assertEqual(service_ports(service)["grpc"]["targetPort"], "grpc")
                self.assertTrue(selects({"matchLabels": service["spec"]["selector"]}, labels))
                metrics = metrics_service(objects, deployment)
                self.assertEqual(service_ports(metrics)["metrics"]["targetPort"], "metrics")
                self.assertTrue(selects({"matchLabels": metrics["spec"]["selector"]}, labels))

    def test_grpc_probes_ask_for_liveness_and_readiness(self) -> None:
        for rendering, _, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                main = container(deployment)
                grpc_port = port(deployment, "grpc")
                for probe, service in [("startupProbe", "liveness"), ("livenessProbe", "liveness"), ("readinessProbe", "")]:
                    self.assertEqual(main[probe]["grpc"]["port"], grpc_port, probe)
                    # kit's health reporter: `liveness` serves while the process
                    # runs, "" only when ready (database up, migrations applied).
                    self.assertEqual(main[probe]["grpc"].get("service", ""), service, probe)

    def test_shutdown_is_graceful(self) -> None:
        for rendering, _, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                main = container(deployment)
                pre_stop = main["lifecycle"]["preStop"]["sleep"]["seconds"]
                grace = seconds(env(deployment)["SHUTDOWN_GRACE"]["value"])
                self.assertGreater(pre_stop, 0)
                # The drain, then 15 s to close the database pool and flush spans.
                self.assertGreaterEqual(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
                                        pre_stop + grace + 15)

    def test_routed_pods_outlast_the_gateways_view_of_them(self) -> None:
        """A terminating backend pod keeps serving through its preStop sleep
        until the gateway has stopped calling it: DNS drops it after its TTL,
        the gateway resolves again every GATEWAY_DNS_REFRESH, plus one
        GATEWAY_HEALTH_INTERVAL of slack."""
        for rendering, objects in RENDERINGS.items():
            deployments = rapport_deployments(objects)
            gateway = env(deployments["rapport-gateway"])
            needed = (milliseconds(gateway["GATEWAY_DNS_REFRESH"]["value"]) + DNS_TTL_MS
                      + milliseconds(gateway["GATEWAY_HEALTH_INTERVAL"]["value"]))
            routed = [name for name in gateway if name.startswith("GATEWAY_BACKEND_")]
            self.assertEqual(routed, ["GATEWAY_BACKEND_CONTACTS", "GATEWAY_BACKEND_PIPELINE", "GATEWAY_BACKEND_SUPPORT"])
            for variable in routed:
                host, _ = gateway_target(gateway[variable]["value"])
                backend = deployments[host.removesuffix("-headless")]
                with self.subTest(rendering=rendering, backend=backend["metadata"]["name"]):
                    pre_stop = container(backend)["lifecycle"]["preStop"]["sleep"]["seconds"]
                    self.assertGreaterEqual(pre_stop * 1000, needed)

    def test_gateway_timing_comes_from_values(self) -> None:
        values = {"routing": {"dnsRefresh": "500ms", "healthInterval": "1500ms"},
                  "services": {"contacts": {"shutdown": {"preStopSeconds": 7}}}}
        deployments = rapport_deployments(chart.objects(chart.render(values)))
        gateway = env(deployments["rapport-gateway"])
        self.assertEqual(gateway["GATEWAY_DNS_REFRESH"]["value"], "500ms")
        self.assertEqual(gateway["GATEWAY_HEALTH_INTERVAL"]["value"], "1500ms")
        self.assertEqual(deployments["rapport-contacts"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
                         7 + 20 + 15)
        # Without a gateway nothing re-resolves the headless Service: no minimum.
        chart.render({"services": {"gateway": {"enabled": False}, "contacts": {"shutdown": {"preStopSeconds": 1}}}})

    def test_pdb_and_hpa_cover_every_deployment(self) -> None:
        for rendering, objects, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                name = deployment["metadata"]["name"]
                labels = deployment["spec"]["template"]["metadata"]["labels"]
                budgets = [pdb for pdb in of_kind(objects, "PodDisruptionBudget").values()
                           if selects(pdb["spec"]["selector"], labels)]
                self.assertEqual(len(budgets), 1, f"one PodDisruptionBudget for {name}")
                scalers = [hpa for hpa in of_kind(objects, "HorizontalPodAutoscaler").values()
                           if hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}]
                self.assertEqual(len(scalers), 1, f"one HorizontalPodAutoscaler for {name}")
                self.assertNotIn("replicas", deployment["spec"], "the HPA owns the replica count")
                self.assertTrue(any(metric["type"] == "Resource" for metric in scalers[0]["spec"]["metrics"]))
                self.assertIn("cpu", container(deployment)["resources"]["requests"], "CPU targets need CPU requests")

    def test_spread_across_zones_and_nodes(self) -> None:
        for rendering, _, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
                keys = {constraint["topologyKey"] for constraint in constraints}
                self.assertIn("topology.kubernetes.io/zone", keys)
                labels = deployment["spec"]["template"]["metadata"]["labels"]
                for constraint in constraints:
                    self.assertTrue(selects(constraint["labelSelector"], labels))

    def test_credentials_only_through_secret_references(self) -> None:
        for rendering, objects, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                for name, entry in env(deployment).items():
                    value = str(entry.get("value", ""))
                    self.assertNotRegex(value, r"^(postgres(ql)?|rediss?)://", f"{name} holds a URL in the pod spec")
                    if name in {"DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET", "PAGE_TOKEN_KEYS"} and value != "off":
                        self.assertIn("secretKeyRef", entry["valueFrom"], name)
                self.assertEqual(of_kind(objects, "ConfigMap"), {})

    def test_tls_to_the_stores_and_keys_from_the_identity_provider(self) -> None:
        """CA files of PostgreSQL and Redis mounted from Secrets and named in
        PGSSLROOTCERT / REDIS_CA_FILE (the migrations Job's too); keys fetched
        from the identity provider instead of an HS256 secret, with egress to
        it allowed."""
        values = merged(chart.load_values("production.yaml"), {
            "database": {"tls": {"sslMode": "verify-full", "caSecret": {"secretName": "pg-ca", "key": "ca.pem"}}},
            "redis": {"tls": {"caSecret": {"secretName": "redis-ca", "key": "ca.crt"}}},
            "auth": {"jwks": {"enabled": False}, "jwksUrl": "https://idp.example.com/keys"},
            "networkPolicy": {"enabled": True},
        })
        objects = chart.objects(chart.render(values))
        for name, deployment in rapport_deployments(objects).items():
            with self.subTest(deployment=name):
                variables = env(deployment)
                pod = deployment["spec"]["template"]["spec"]
                mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0].get("volumeMounts", [])}
                volumes = {v["name"]: v for v in pod.get("volumes", [])}
                self.assertEqual(variables["AUTH_JWKS_URL"]["value"], "https://idp.example.com/keys")
                self.assertNotIn("AUTH_JWT_SECRET", variables)
                self.assertEqual(variables["PAGE_TOKEN_KEYS"]["valueFrom"]["secretKeyRef"],
                                 {"name": "rapport-page-tokens", "key": "keys", "optional": True},
                                 "replicas must share the page token keys")
                if "DATABASE_URL" in variables:
                    self.assertEqual(variables["PGSSLMODE"]["value"], "verify-full")
                    self.assertEqual(variables["PGSSLROOTCERT"]["value"], "/etc/rapport/tls/database/ca.pem")
                    self.assertEqual(mounts["database-ca"], "/etc/rapport/tls/database")
                    self.assertEqual(volumes["database-ca"]["secret"]["secretName"], "pg-ca")
                    self.assertEqual(volumes["database-ca"]["secret"]["items"], [{"key": "ca.pem", "path": "ca.pem"}])
                if "REDIS_URL" in variables:
                    self.assertEqual(variables["REDIS_CA_FILE"]["value"], "/etc/rapport/tls/redis/ca.crt")
                    self.assertEqual(mounts["redis-ca"], "/etc/rapport/tls/redis")
        job = of_kind(objects, "Job")["rapport-migrate"]["spec"]["template"]["spec"]
        job_env = {e["name"]: e for e in job["containers"][0]["env"]}
        self.assertEqual(job_env["PGSSLROOTCERT"]["value"], "/etc/rapport/tls/database/ca.pem")
        self.assertEqual(job["volumes"][0]["secret"]["secretName"], "pg-ca")
        policies = of_kind(objects, "NetworkPolicy")
        for name in rapport_deployments(objects):
            with self.subTest(policy=name):
                egress_ports = [p["port"] for rule in policies[name]["spec"]["egress"] for p in rule["ports"]]
                self.assertIn(443, egress_ports, "the keys cannot be fetched")
        without = chart.objects(chart.render(chart.load_values("production.yaml")))
        for name, policy in of_kind(without, "NetworkPolicy").items():
            with self.subTest(default_policy=name):
                ports = [p["port"] for rule in policy["spec"].get("egress", []) for p in rule["ports"]]
                self.assertNotIn(443, ports)

    def test_pods_never_migrate(self) -> None:
        for rendering, objects, deployment in self.each():
            with self.subTest(rendering=rendering, deployment=deployment["metadata"]["name"]):
                variables = env(deployment)
                component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
                if component in WITH_DATABASE:
                    self.assertIn("DATABASE_URL", variables, f"{component} reads the database")
                if "DATABASE_URL" in variables:
                    self.assertEqual(variables["RAPPORT_AUTO_MIGRATE"]["value"], "false")


class Migrations(unittest.TestCase):
    def job(self, rendering: str) -> dict[str, Any]:
        jobs = of_kind(RENDERINGS[rendering], "Job")
        self.assertEqual(list(jobs), ["rapport-migrate"])
        return jobs["rapport-migrate"]

    def test_migrations_run_as_a_hook_before_install_and_upgrade(self) -> None:
        for rendering in ("default", "production"):
            job = self.job(rendering)
            hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
            self.assertEqual(sorted(hooks), ["pre-install", "pre-upgrade"])
            main = job["spec"]["template"]["spec"]["containers"][0]
            self.assertEqual(main["args"], ["migrate", *WITH_DATABASE])
            self.assertIn("secretKeyRef", {e["name"]: e for e in main["env"]}["DATABASE_URL"]["valueFrom"])
            self.assertTrue(main["securityContext"]["readOnlyRootFilesystem"])

    def test_with_the_dev_database_migrations_run_after_install(self) -> None:
        job = self.job("dev")
        self.assertEqual(job["metadata"]["annotations"]["helm.sh/hook"], "post-install,pre-upgrade")
        secrets = of_kind(RENDERINGS["dev"], "Secret")
        self.assertEqual(set(secrets), {"rapport", "rapport-migrate"})
        # The Job's copy exists before the release's own objects do.
        self.assertIn("helm.sh/hook", secrets["rapport-migrate"]["metadata"]["annotations"])
        self.assertEqual(secrets["rapport-migrate"]["data"]["database-url"], secrets["rapport"]["data"]["database-url"])


    def test_the_job_takes_annotations_a_service_account_and_extra_env(self) -> None:
        default = self.job("default")["spec"]["template"]["spec"]
        self.assertNotIn("serviceAccountName", default)
        self.assertFalse(default["automountServiceAccountToken"])
        values = {"migrations": {"podAnnotations": {"sidecar.istio.io/inject": "false"},
                                 "serviceAccountName": "rapport-migrator",
                                 "extraEnv": [{"name": "PGSSLROOTCERT", "value": "/etc/ssl/certs/ca.pem"}]}}
        job = of_kind(chart.objects(chart.render(values)), "Job")["rapport-migrate"]
        kubernetes_validate.validate(job, KUBERNETES, strict=True)
        template = job["spec"]["template"]
        self.assertEqual(template["metadata"]["annotations"], {"sidecar.istio.io/inject": "false"})
        self.assertEqual(template["spec"]["serviceAccountName"], "rapport-migrator")
        self.assertTrue(template["spec"]["automountServiceAccountToken"], "a named account's token is mounted")
        job_env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
        self.assertEqual(job_env["PGSSLROOTCERT"]["value"], "/etc/ssl/certs/ca.pem")
        self.assertIn("DATABASE_URL", job_env)


class Gateway(unittest.TestCase):
    def test_gateway_balances_over_headless_backends(self) -> None:
        for rendering, objects in RENDERINGS.items():
            for area in ROUTED:
                with self.subTest(rendering=rendering, area=area):
                    gateway = rapport_deployments(objects)["rapport-gateway"]
                    host, target_port = gateway_target(env(gateway)[f"GATEWAY_BACKEND_{area.upper()}"]["value"])
                    self.assertEqual(host, f"rapport-{area}-headless")
                    headless = of_kind(objects, "Service")[host]
                    backend = rapport_deployments(objects)[f"rapport-{area}"]
                    self.assertEqual(headless["spec"]["clusterIP"], "None")
                    self.assertEqual({p["name"]: p["port"] for p in headless["spec"]["ports"]},
                                     {"grpc": target_port, "metrics": port(backend, "metrics")})
                    self.assertEqual(target_port, port(backend, "grpc"))
                    self.assertTrue(selects({"matchLabels": headless["spec"]["selector"]},
                                            backend["spec"]["template"]["metadata"]["labels"]))

    def test_metrics_stay_inside_the_cluster(self) -> None:
        """An exposed (LoadBalancer, NodePort) Service carries gRPC only;
        /metrics is on a ClusterIP `<name>-metrics` Service instead."""
        exposed_contacts = merged(chart.load_values("production.yaml"),
                                  {"services": {"contacts": {"service": {"type": "NodePort"}}}})
        renderings = dict(RENDERINGS, exposed_contacts=chart.objects(chart.render(exposed_contacts)))
        for rendering, objects in renderings.items():
            services = of_kind(objects, "Service")
            for name, deployment in rapport_deployments(objects).items():
                with self.subTest(rendering=rendering, service=name):
                    main = services[name]
                    if main["spec"]["type"] == "ClusterIP":
                        self.assertIn("metrics", service_ports(main))
                        self.assertNotIn(f"{name}-metrics", services)
                    else:
                        self.assertEqual(list(service_ports(main)), ["grpc"], "/metrics must not be published")
                        metrics = services[f"{name}-metrics"]
                        self.assertEqual(metrics["spec"]["type"], "ClusterIP")
                        self.assertEqual(list(service_ports(metrics)), ["metrics"])
                        self.assertEqual(service_ports(metrics)["metrics"]["port"], port(deployment, "metrics"))
        exposed = {name for name, service in of_kind(renderings["exposed_contacts"], "Service").items()
                   if service["spec"].get("type", "ClusterIP") != "ClusterIP"}
        self.assertEqual(exposed, {"rapport-gateway", "rapport-contacts"})

    def test_exposure(self) -> None:
        objects = RENDERINGS["production"]
        ingress = of_kind(objects, "Ingress")["rapport-gateway"]
        self.assertEqual(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"], "GRPC")
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        self.assertEqual(backend, {"name": "rapport-gateway", "port": {"number": 50050}})
        route = of_kind(objects, "GRPCRoute")["rapport-gateway"]
        self.assertEqual(route["spec"]["rules"][0]["backendRefs"], [{"name": "rapport-gateway", "port": 50050}])
        self.assertEqual(of_kind(objects, "Service")["rapport-gateway"]["spec"]["type"], "LoadBalancer")

    def test_notes_say_how_to_reach_the_gateway_and_mint_a_token(self) -> None:
        notes = RENDERED["default"]["rapport/templates/NOTES.txt"]
        self.assertIn("port-forward service/rapport-gateway 50050:50050", notes)
        self.assertIn("exec deploy/rapport-gateway -- rapport dev-token --role admin", notes)
        self.assertIn("create secret generic rapport", notes)
        production = RENDERED["production"]["rapport/templates/NOTES.txt"]
        self.assertIn("identity provider", production)
        self.assertIn("https://api.crm.example.com", production)
        self.assertNotIn("ingress.tls is empty", production)

    def test_notes_say_grpc_through_ingress_nginx_needs_tls(self) -> None:
        notes = chart.render({"ingress": {"enabled": True}})["rapport/templates/NOTES.txt"]
        self.assertIn("http://rapport.example.com", notes)
        self.assertIn("ingress.tls is empty: ingress-nginx speaks HTTP/2, which gRPC needs, only on its TLS listener", notes)

    def test_restart_commands_restart_only_the_services(self) -> None:
        """The restart after changing keys selects the service Deployments,
        not the dev PostgreSQL and Redis."""
        values = merged(DEV_VALUES, {"auth": {"apiKeys": {"enabled": True}}, "credentials": {"apiKeys": '{"keys": []}'}})
        rendered = chart.render(values)
        deployments = of_kind(chart.objects(rendered), "Deployment")
        self.assertTrue({"rapport-dev-postgresql", "rapport-dev-redis"} <= set(deployments), set(deployments))
        readme = re.sub(r"\s*\n\s*", " ", (chart.ROOT / "README.md").read_text())
        sources = {"NOTES.txt": rendered["rapport/templates/NOTES.txt"], "README.md": readme}
        for source, text in sources.items():
            selectors = re.findall(r"rollout restart deployment -l ([^\s`]+)", text)
            with self.subTest(source=source):
                self.assertTrue(selectors, f"{source} says how to restart")
                for raw in selectors:
                    selector = {"matchLabels": dict(term.split("=", 1) for term in raw.split(","))}
                    restarted = {name for name, d in deployments.items() if selects(selector, d["metadata"]["labels"])}
                    self.assertEqual(restarted, set(rapport_deployments(chart.objects(rendered))), raw)


class Observability(unittest.TestCase):
    def test_tracing_and_service_monitor(self) -> None:
        objects = RENDERINGS["production"]
        for name, deployment in rapport_deployments(objects).items():
            variables = env(deployment)
            self.assertEqual(variables["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"],
                             "http://otel-collector.observability.svc:4317")
            self.assertEqual(variables["OTEL_TRACES_SAMPLER_ARG"]["value"], "0.1")
        monitor = of_kind(objects, "ServiceMonitor")["rapport"]
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "metrics")

    def test_service_monitor_scrapes_each_pod_once(self) -> None:
        """The ServiceMonitor's own selector picks one Service with a
        `metrics` port per Deployment: not the headless ones, not an exposed
        Service (production's gateway is a LoadBalancer)."""
        exposed_contacts = merged(chart.load_values("production.yaml"),
                                  {"services": {"contacts": {"service": {"type": "NodePort"}}}})
        for rendering, values, expected in [
            ("production", chart.load_values("production.yaml"),
             ["rapport-contacts", "rapport-gateway-metrics", "rapport-pipeline", "rapport-support"]),
            ("exposed contacts", exposed_contacts,
             ["rapport-contacts-metrics", "rapport-gateway-metrics", "rapport-pipeline", "rapport-support"]),
            ("default with a ServiceMonitor", {"metrics": {"serviceMonitor": {"enabled": True}}},
             ["rapport-contacts", "rapport-gateway", "rapport-pipeline", "rapport-support"]),
        ]:
            with self.subTest(rendering=rendering):
                objects = chart.objects(chart.render(values))
                monitor = of_kind(objects, "ServiceMonitor")["rapport"]
                scraped = [service for service in of_kind(objects, "Service").values()
                           if selects(monitor["spec"]["selector"], service["metadata"]["labels"])]
                self.assertEqual(sorted(s["metadata"]["name"] for s in scraped), expected)
                for service in scraped:
                    self.assertIn("metrics", service_ports(service), service["metadata"]["name"])
                for name, deployment in rapport_deployments(objects).items():
                    labels = deployment["spec"]["template"]["metadata"]["labels"]
                    covering = [s for s in scraped if selects({"matchLabels": s["spec"]["selector"]}, labels)]
                    self.assertEqual(len(covering), 1, f"{name} is scraped through exactly one Service")


class NetworkPolicies(unittest.TestCase):
    def test_on_by_default_with_metrics_closed_to_the_outside(self) -> None:
        """A plain install gets the NetworkPolicies, and its metrics
        listeners admit pods of the cluster, not any address."""
        policies = of_kind(RENDERINGS["default"], "NetworkPolicy")
        self.assertIn("rapport-default-deny", policies)
        for name, policy in policies.items():
            for rule in policy["spec"].get("ingress", []):
                if any(port["port"] in (9150, 9151, 9152, 9153) for port in rule["ports"]):
                    self.assertEqual(rule.get("from"), [{"namespaceSelector": {}}], name)

    def test_default_deny_and_only_the_gateway_and_declared_callers_reach_backends(self) -> None:
        objects = RENDERINGS["production"]
        policies = of_kind(objects, "NetworkPolicy")
        deny = policies["rapport-default-deny"]
        self.assertEqual(sorted(deny["spec"]["policyTypes"]), ["Egress", "Ingress"])
        self.assertNotIn("ingress", deny["spec"])
        self.assertNotIn("egress", deny["spec"])
        for deployment in rapport_deployments(objects).values():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            self.assertTrue(selects(deny["spec"]["podSelector"], labels))
        contacts = policies["rapport-contacts"]["spec"]
        grpc_rule = next(rule for rule in contacts["ingress"] if rule["ports"][0]["port"] == 50051)
        # The gateway (contacts is routed), pipeline and support (their `calls`).
        self.assertEqual([peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in grpc_rule["from"]],
                         ["gateway", "pipeline", "support"])
        egress_ports = {p["port"] for rule in contacts["egress"] for p in rule["ports"]}
        self.assertEqual(egress_ports, {53, 5432, 6379, 4317, 50052, 50053}, "contacts follows pipeline and support")
        pipeline = policies["rapport-pipeline"]["spec"]
        grpc_rule = next(rule for rule in pipeline["ingress"] if rule["ports"][0]["port"] == 50052)
        self.assertEqual([peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in grpc_rule["from"]],
                         ["gateway", "contacts"], "the gateway routes to pipeline, contacts follows its feed")
        egress_ports = {p["port"] for rule in pipeline["egress"] for p in rule["ports"]}
        self.assertEqual(egress_ports, {53, 5432, 6379, 4317, 50051}, "pipeline calls contacts")
        support = policies["rapport-support"]["spec"]
        grpc_rule = next(rule for rule in support["ingress"] if rule["ports"][0]["port"] == 50053)
        self.assertEqual([peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in grpc_rule["from"]],
                         ["gateway", "contacts"], "the gateway routes to support, contacts follows its feed")
        egress_ports = {p["port"] for rule in support["egress"] for p in rule["ports"]}
        self.assertEqual(egress_ports, {53, 5432, 6379, 4317, 50051}, "support calls contacts")
        for caller, spec in [("pipeline", pipeline), ("support", support)]:
            to_contacts = [rule for rule in spec["egress"] if any(p["port"] == 50051 for p in rule["ports"])]
            self.assertEqual(to_contacts, [{
                "ports": [{"port": 50051, "protocol": "TCP"}],
                "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "rapport",
                                                        "app.kubernetes.io/instance": "rapport",
                                                        "app.kubernetes.io/component": "contacts"}}}],
            }], f"{caller} to contacts' pods only, not to any address")
        gateway = policies["rapport-gateway"]["spec"]
        gateway_ports = {p["port"] for rule in gateway["egress"] for p in rule["ports"]}
        self.assertEqual(gateway_ports, {53, 6379, 4317, 50051, 50052, 50053}, "the gateway keeps no data: no PostgreSQL")
        migrate = policies["rapport-migrate"]["spec"]
        self.assertEqual({p["port"] for rule in migrate["egress"] for p in rule["ports"]}, {53, 5432})

    def test_load_balancer_clients_reach_the_gateway(self) -> None:
        """production.yaml exposes the gateway as a LoadBalancer: its
        NetworkPolicy admits the load balancer's source ranges."""
        objects = RENDERINGS["production"]
        service = of_kind(objects, "Service")["rapport-gateway"]["spec"]
        self.assertEqual(service["type"], "LoadBalancer")
        grpc_rule = next(rule for rule in of_kind(objects, "NetworkPolicy")["rapport-gateway"]["spec"]["ingress"]
                         if rule["ports"][0]["port"] == 50050)
        cidrs = [peer["ipBlock"]["cidr"] for peer in grpc_rule["from"] if "ipBlock" in peer]
        self.assertTrue(service["loadBalancerSourceRanges"])
        self.assertLessEqual(set(service["loadBalancerSourceRanges"]), set(cidrs))
        # Without peers the policy admits any address: nothing to refuse.
        chart.render({"services": {"gateway": {"service": {"type": "LoadBalancer"}}}, "networkPolicy": {"enabled": True}})

    def test_declared_callers_may_call(self) -> None:
        values = merged(chart.load_values("production.yaml"), {"services": {"reporting": {
            "enabled": True, "ports": {"grpc": 50055, "metrics": 9155}, "database": True, "calls": ["contacts"]}}})
        policies = of_kind(chart.objects(chart.render(values)), "NetworkPolicy")
        grpc_rule = next(rule for rule in policies["rapport-contacts"]["spec"]["ingress"] if rule["ports"][0]["port"] == 50051)
        callers = sorted(peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in grpc_rule["from"])
        self.assertEqual(callers, ["gateway", "pipeline", "reporting", "support"])
        reporting_egress = {p["port"] for rule in policies["rapport-reporting"]["spec"]["egress"] for p in rule["ports"]}
        self.assertIn(50051, reporting_egress)

    def test_declared_calls_get_through_end_to_end(self) -> None:
        """Every <NAME>_<CALLEE>_ADDR names the callee's Service, whose gRPC
        port leads to the callee's pods, and the NetworkPolicies let the
        caller's pods open that connection (its egress, the callee's
        ingress); the gateway reaches every routed backend; undeclared
        calls between services are dropped."""
        for rendering, values in [("production", chart.load_values("production.yaml")),
                                  ("default with NetworkPolicies", {"networkPolicy": {"enabled": True}})]:
            objects = chart.objects(chart.render(values))
            policies = of_kind(objects, "NetworkPolicy")
            services = of_kind(objects, "Service")
            deployments = rapport_deployments(objects)
            calls = direct_calls(deployments)
            self.assertEqual(set(calls), {("rapport-pipeline", "PIPELINE_CONTACTS_ADDR"),
                                          ("rapport-support", "SUPPORT_CONTACTS_ADDR"),
                                          ("rapport-contacts", "CONTACTS_PIPELINE_ADDR"),
                                          ("rapport-contacts", "CONTACTS_SUPPORT_ADDR")}, rendering)
            callee_of = {"PIPELINE_CONTACTS_ADDR": "rapport-contacts", "SUPPORT_CONTACTS_ADDR": "rapport-contacts",
                         "CONTACTS_PIPELINE_ADDR": "rapport-pipeline", "CONTACTS_SUPPORT_ADDR": "rapport-support"}
            for (caller, variable), address in calls.items():
                with self.subTest(rendering=rendering, variable=variable):
                    host, _, port_text = address.removeprefix("http://").rpartition(":")
                    service = services[host]
                    entry = next(p for p in service["spec"]["ports"] if p["port"] == int(port_text))
                    self.assertEqual(entry["targetPort"], "grpc")
                    callees = [d for d in deployments.values()
                               if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(d))]
                    self.assertEqual([d["metadata"]["name"] for d in callees], [callee_of[variable]])
                    self.assertTrue(connection_allowed(policies, deployments[caller], callees[0],
                                                       port(callees[0], "grpc")), f"{caller} -> {address}")
            gateway = deployments["rapport-gateway"]
            for variable, entry in env(gateway).items():
                if variable.startswith("GATEWAY_BACKEND_"):
                    with self.subTest(rendering=rendering, variable=variable):
                        host, target_port = gateway_target(entry["value"])
                        backend = deployments[host.removesuffix("-headless")]
                        self.assertTrue(connection_allowed(policies, gateway, backend, target_port))
            contacts, pipeline = deployments["rapport-contacts"], deployments["rapport-pipeline"]
            support = deployments["rapport-support"]
            with self.subTest(rendering=rendering, check="undeclared calls"):
                self.assertFalse(connection_allowed(policies, pipeline, gateway, port(gateway, "grpc")))
                self.assertFalse(connection_allowed(policies, contacts, gateway, port(gateway, "grpc")))
                self.assertFalse(connection_allowed(policies, pipeline, contacts, port(contacts, "metrics")))
                self.assertFalse(connection_allowed(policies, contacts, support, port(support, "metrics")))
                self.assertFalse(connection_allowed(policies, support, pipeline, port(pipeline, "grpc")))
                self.assertFalse(connection_allowed(policies, pipeline, support, port(support, "grpc")))
                # Without NetworkPolicies nothing is dropped: the checks above see the policies.
                self.assertTrue(connection_allowed({}, contacts, pipeline, port(pipeline, "grpc")))


class Values(unittest.TestCase):
    def test_adding_a_service_is_a_values_change(self) -> None:
        self.assertNotIn("reporting", SERVICES, "the example must be a service the chart does not have yet")
        values = {"services": {"reporting": {"enabled": True, "area": "reporting", "ports": {"grpc": 50055, "metrics": 9155},
                                             "database": True, "redis": True, "calls": ["contacts"]}}}
        objects = chart.objects(chart.render(values))
        deployments = rapport_deployments(objects)
        reporting = deployments["rapport-reporting"]
        self.assertEqual(container(reporting)["args"], ["serve", "reporting"])
        self.assertEqual(env(reporting)["REPORTING_ADDR"]["value"], "0.0.0.0:50055")
        self.assertEqual(env(reporting)["REPORTING_METRICS_ADDR"]["value"], "0.0.0.0:9155")
        self.assertEqual(env(reporting)["REPORTING_CONTACTS_ADDR"]["value"], "http://rapport-contacts:50051")
        self.assertEqual(env(deployments["rapport-gateway"])["GATEWAY_BACKEND_REPORTING"]["value"],
                         "dns:rapport-reporting-headless:50055")
        for kind in ("Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            self.assertIn("rapport-reporting", of_kind(objects, kind), kind)
        self.assertIn("rapport-reporting-headless", of_kind(objects, "Service"))
        job = of_kind(objects, "Job")["rapport-migrate"]
        # Migrated in name order, with the default services'.
        self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["args"],
                         ["migrate", *sorted([*WITH_DATABASE, "reporting"])])
        # The defaults are untouched.
        self.assertEqual(set(deployments), {f"rapport-{name}" for name in [*ENABLED, "reporting"]})
        self.assertEqual(env(deployments["rapport-gateway"])["GATEWAY_BACKEND_PIPELINE"]["value"],
                         "dns:rapport-pipeline-headless:50052")
        self.assertEqual(env(deployments["rapport-gateway"])["GATEWAY_BACKEND_SUPPORT"]["value"],
                         "dns:rapport-support-headless:50053")

    def test_a_disabled_backend_is_not_routed(self) -> None:
        # pipeline and support call contacts, so disabling contacts disables
        # them too (alone it is refused: test_inconsistent_values_fail_with_what_to_set).
        objects = chart.objects(chart.render({"services": {"contacts": {"enabled": False}, "pipeline": {"enabled": False},
                                                           "support": {"enabled": False}}}))
        gateway = rapport_deployments(objects)["rapport-gateway"]
        self.assertEqual(env(gateway)["GATEWAY_BACKEND_CONTACTS"]["value"], "off")
        self.assertEqual(env(gateway)["GATEWAY_BACKEND_PIPELINE"]["value"], "off")
        self.assertEqual(env(gateway)["GATEWAY_BACKEND_SUPPORT"]["value"], "off")
        self.assertEqual(set(of_kind(objects, "Deployment")), {"rapport-gateway"})
        self.assertEqual(of_kind(objects, "Job"), {}, "nothing to migrate")
        # Nothing calls pipeline: it can go alone (contacts stops following it).
        objects = chart.objects(chart.render({"services": {"pipeline": {"enabled": False}}}))
        gateway = rapport_deployments(objects)["rapport-gateway"]
        self.assertEqual(env(gateway)["GATEWAY_BACKEND_PIPELINE"]["value"], "off")
        contacts = rapport_deployments(objects)["rapport-contacts"]
        self.assertEqual(env(contacts)["CONTACTS_PIPELINE_ADDR"]["value"], "off")
        self.assertEqual(env(contacts)["CONTACTS_SUPPORT_ADDR"]["value"], "http://rapport-support:50053")
        self.assertEqual(env(gateway)["GATEWAY_BACKEND_CONTACTS"]["value"], "dns:rapport-contacts-headless:50051")
        self.assertEqual(env(gateway)["GATEWAY_BACKEND_SUPPORT"]["value"], "dns:rapport-support-headless:50053")
        self.assertEqual(set(of_kind(objects, "Deployment")), {"rapport-gateway", "rapport-contacts", "rapport-support"})
        job = of_kind(objects, "Job")["rapport-migrate"]
        self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["args"], ["migrate", "contacts", "support"])

    def test_callers_get_their_callees_address(self) -> None:
        """services.pipeline.calls: [contacts] gives pipeline
        PIPELINE_CONTACTS_ADDR, contacts' ClusterIP Service on its gRPC
        port, following the object names and the port; services.pipeline.env
        overrides it."""
        def address(values: dict[str, Any] | None = None, release: str = chart.RELEASE) -> str:
            deployments = rapport_deployments(chart.objects(chart.render(values, release=release)))
            pipeline = next(d for d in deployments.values()
                            if d["metadata"]["labels"]["app.kubernetes.io/component"] == "pipeline")
            value: str = env(pipeline)["PIPELINE_CONTACTS_ADDR"]["value"]
            return value

        for rendering, objects in RENDERINGS.items():
            with self.subTest(rendering=rendering):
                deployments = rapport_deployments(objects)
                self.assertEqual(env(deployments["rapport-pipeline"])["PIPELINE_CONTACTS_ADDR"]["value"],
                                 "http://rapport-contacts:50051")
                self.assertEqual(env(deployments["rapport-support"])["SUPPORT_CONTACTS_ADDR"]["value"],
                                 "http://rapport-contacts:50051")
                self.assertEqual(list(direct_calls(deployments)), [("rapport-contacts", "CONTACTS_PIPELINE_ADDR"),
                                                                   ("rapport-contacts", "CONTACTS_SUPPORT_ADDR"),
                                                                   ("rapport-pipeline", "PIPELINE_CONTACTS_ADDR"),
                                                                   ("rapport-support", "SUPPORT_CONTACTS_ADDR")],
                                 "only declared calls and followed feeds get an address")
                self.assertEqual(env(deployments["rapport-contacts"])["CONTACTS_PIPELINE_ADDR"]["value"],
                                 "http://rapport-pipeline:50052")
        self.assertEqual(address(release="crm"), "http://crm-rapport-contacts:50051")
        self.assertEqual(address(release="rapport-prod"), "http://rapport-prod-contacts:50051")
        self.assertEqual(address({"fullnameOverride": "crm"}), "http://crm-contacts:50051")
        moved = {"services": {"contacts": {"ports": {"grpc": 6000}}}}
        self.assertEqual(address(moved), "http://rapport-contacts:6000")
        service = of_kind(chart.objects(chart.render(moved)), "Service")["rapport-contacts"]
        self.assertEqual(service_ports(service)["grpc"]["port"], 6000, "the address is the Service's port")
        overridden = {"services": {"pipeline": {"env": {"PIPELINE_CONTACTS_ADDR": "http://contacts.other:50051"}}}}
        self.assertEqual(address(overridden), "http://contacts.other:50051")
        # Without the declaration there is no address (the binary's default is 127.0.0.1).
        deployments = rapport_deployments(chart.objects(chart.render({"services": {"pipeline": {"calls": []}}})))
        self.assertNotIn("PIPELINE_CONTACTS_ADDR", env(deployments["rapport-pipeline"]))

    def test_service_values_override_defaults_even_with_false(self) -> None:
        values = {"services": {"contacts": {"autoscaling": {"enabled": False}, "replicas": 4,
                                            "podDisruptionBudget": {"enabled": False}, "topologySpread": {"enabled": False},
                                            "env": {"RUST_LOG": "debug"}}}}
        objects = chart.objects(chart.render(values))
        contacts = rapport_deployments(objects)["rapport-contacts"]
        self.assertEqual(contacts["spec"]["replicas"], 4)
        self.assertNotIn("rapport-contacts", of_kind(objects, "HorizontalPodAutoscaler"))
        self.assertNotIn("rapport-contacts", of_kind(objects, "PodDisruptionBudget"))
        self.assertNotIn("topologySpreadConstraints", contacts["spec"]["template"]["spec"])
        self.assertEqual(env(contacts)["RUST_LOG"]["value"], "debug")
        self.assertIn("rapport-gateway", of_kind(objects, "HorizontalPodAutoscaler"))

    def test_values_that_break_the_schema_are_refused_with_a_message(self) -> None:
        cases = [
            ({"services": {"contacts": {"replica": 3}}}, "/services/contacts", "replica"),
            ({"replicaCount": 3}, "replicaCount", "not allowed"),
            ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", "must be one of"),
            ({"services": {"contacts": {"ports": {"grpc": "50051"}}}}, "/services/contacts/ports/grpc", "string"),
            ({"services": {"reporting": {"enabled": True}}}, "/services/reporting", "ports"),
            ({"services": {"contacts": {"env": {"CONTACTS_CACHE_LOCAL_CAPACITY": 5000}}}},
             "/services/contacts/env/CONTACTS_CACHE_LOCAL_CAPACITY", "string"),
            ({"telemetry": {"otlp": {"samplingRatio": 2}}}, "/telemetry/otlp/samplingRatio", "maximum"),
            ({"database": {"acquireTimeout": "5 seconds"}}, "/database/acquireTimeout", "5 seconds"),
            ({"networkPolicy": {"postgresql": {"to": [{"ipBlok": {"cidr": "10.0.0.0/8"}}]}}}, "/networkPolicy/postgresql/to/0",
             "ipBlok"),
            ({"routing": {"dnsRefresh": "2 seconds"}}, "/routing/dnsRefresh", "2 seconds"),
            # A zero-second preStop sleep is refused by API servers before 1.33 (Chart.yaml allows 1.30).
            ({"services": {"gateway": {"shutdown": {"preStopSeconds": 0}}}},
             "/services/gateway/shutdown/preStopSeconds", "minimum"),
        ]
        for values, path, detail in cases:
            with self.subTest(values=values):
                with self.assertRaises(helm.HelmValuesError) as refused:
                    chart.render(values)
                message = str(refused.exception)
                self.assertIn(path, message)
                self.assertIn(detail, message)
                report = helm.lint(chart.CHART, values)
                self.assertTrue(any(path in error for error in report["errors"]), report["errors"])

    def test_inconsistent_values_fail_with_what_to_set(self) -> None:
        cases = [
            ({"credentials": {"create": True}}, "credentials.databaseUrl"),
            ({"credentials": {"create": True, "databaseUrl": "postgres://db/rapport", "redisUrl": "redis://r:6379"}},
             "credentials.jwtSecret"),
            ({"dev": {"postgresql": {"enabled": True}}}, "credentials.create=true"),
            ({"services": {"contacts": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}}, "minReplicas (5)"),
            ({"services": {"gateway": {"calls": ["billing"]}}}, '"billing"'),
            ({"services": {"contacts": {"enabled": False}}},
             'services.pipeline.calls names "contacts", which is not an enabled service'),
            ({"services": {"contacts": {"enabled": False}, "pipeline": {"enabled": False}}},
             'services.support.calls names "contacts", which is not an enabled service'),
            ({"grpcRoute": {"enabled": True}}, "grpcRoute.parentRefs"),
            ({"services": {"gateway": {"service": {"type": "LoadBalancer"}}},
              "networkPolicy": {"enabled": True, "gatewayFrom": [{"namespaceSelector": {}}]}},
             "networkPolicy.gatewayFrom has no ipBlock"),
            ({"services": {"gateway": {"service": {"type": "NodePort"}}},
              "networkPolicy": {"enabled": True, "gatewayFrom": [{"podSelector": {}}]}},
             "services.gateway.service.type is NodePort"),
            ({"services": {"contacts": {"shutdown": {"preStopSeconds": 5}}}},
             "services.contacts.shutdown.preStopSeconds (5) is shorter than the gateway takes to stop calling a "
             "terminating pod, routing.dnsRefresh (2s) + routing.healthInterval (2s) + routing.dnsTtl (5s): "
             "set preStopSeconds to at least 9"),
            ({"routing": {"dnsRefresh": "10s"}}, "set preStopSeconds to at least 17"),
            ({"services": {"gateway": {"env": {"GATEWAY_DNS_REFRESH": "30s"}}}},
             "services.gateway.env.GATEWAY_DNS_REFRESH (30s)"),
            ({"services": {"gateway": {"env": {"GATEWAY_HEALTH_INTERVAL": "2x"}}}},
             'services.gateway.env.GATEWAY_HEALTH_INTERVAL: "2x" is not a duration'),
            ({"auth": {"jwksUrl": "https://idp.example.com/keys", "oidcDiscovery": True}},
             "set one of auth.jwks.enabled, auth.jwksUrl and auth.oidcDiscovery"),
            ({"credentials": {"create": True, "databaseUrl": "postgres://db/rapport", "redisUrl": "rediss://r:6379"},
              "auth": {"oidcDiscovery": True}},
             "credentials.pageTokenKeys"),
        ]
        for values, detail in cases:
            with self.subTest(values=values):
                with self.assertRaises(helm.HelmRenderError) as refused:
                    chart.render(values)
                self.assertIn(detail, str(refused.exception))


class Documentation(unittest.TestCase):
    """What README.md says about installing, checked against the chart."""

    README = (chart.ROOT / "README.md").read_text()

    def helm_commands(self) -> list[str]:
        """Every `helm install`/`helm upgrade` command in the README and the
        example values, continuation lines joined."""
        texts = [self.README, (chart.EXAMPLES / "production.yaml").read_text()]
        commands = []
        for text in texts:
            joined = re.sub(r"\\\n\s*", " ", text)
            commands += [line.strip(" #") for line in joined.splitlines()
                         if re.match(r"^[\s#]*helm (install|upgrade) ", line)]
        return commands

    def test_upgrades_pass_the_values_file_again(self) -> None:
        """--reuse-values drops the new chart's defaults, so an upgrade to a
        chart version with a new or renamed value fails the schema."""
        commands = self.helm_commands()
        self.assertGreaterEqual(len(commands), 4, commands)
        for command in commands:
            with self.subTest(command=command):
                self.assertNotIn("--reuse-values", command)
                self.assertRegex(command, r" -f \S+\.yaml")

    def test_readme_names_the_default_secret_as_the_chart_does(self) -> None:
        examples = re.findall(r"release\s+`([^`]+)`(?:\s+uses)?\s+the\s+Secret\s+`([^`]+)`", self.README)
        releases = {release for release, _ in examples}
        self.assertTrue({"rapport", "crm"} < releases, "examples with and without 'rapport' in the release name")
        for release, secret in examples:
            with self.subTest(release=release):
                rendered = chart.render(None, release=release)
                deployments = rapport_deployments(chart.objects(rendered))
                reference = env(deployments[f"{secret}-contacts"])["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
                self.assertEqual(reference["name"], secret)
                self.assertIn(f"create secret generic {secret} ", rendered["rapport/templates/NOTES.txt"])


class PlainManifests(unittest.TestCase):
    def test_k8s_is_the_chart_rendered_with_default_values(self) -> None:
        problems = chart.drift(chart.k8s_files(RENDERED["default"]), chart.K8S)
        if problems:
            self.fail("k8s/ differs from the chart: run `make k8s` and commit k8s/\n" + "\n".join(problems))

    def test_the_drift_check_sees_a_change(self) -> None:
        expected = chart.k8s_files(RENDERED["default"])
        with tempfile.TemporaryDirectory() as directory:
            copy_of_k8s = pathlib.Path(directory) / "k8s"
            copy_of_k8s.mkdir()
            for name, text in expected.items():
                (copy_of_k8s / name).write_text(text)
            self.assertEqual(chart.drift(expected, copy_of_k8s), [])
            deployment = copy_of_k8s / "deployment.yaml"
            deployment.write_text(deployment.read_text().replace("maxUnavailable: 0", "maxUnavailable: 1", 1))
            (copy_of_k8s / "extra.yaml").write_text("kind: ConfigMap\n")
            (copy_of_k8s / "pdb.yaml").unlink()
            problems = chart.drift(expected, copy_of_k8s)
            self.assertEqual(len(problems), 3, problems)
            self.assertIn("k8s/pdb.yaml is missing", problems)
            self.assertIn("k8s/extra.yaml is not produced by the chart", problems)
            self.assertIn("+      maxUnavailable: 0", problems[-1])

    def test_kustomization_lists_every_manifest(self) -> None:
        kustomization = yaml.safe_load((chart.K8S / "kustomization.yaml").read_text())
        manifests = sorted(path.name for path in chart.K8S.glob("*.yaml") if path.name != "kustomization.yaml")
        self.assertEqual(kustomization["resources"], manifests)


class Services(unittest.TestCase):
    """The chart's services are the binary's: one values entry per row of
    the binary's service table (`rapport services`), with its ports and
    callees; the image exposes every port."""

    @classmethod
    def setUpClass(cls) -> None:
        command = ["cargo", "run", "--quiet", "--locked", "-p", "rapport", "--", "services"]
        done = subprocess.run(command, cwd=chart.ROOT, capture_output=True, text=True, env=os.environ, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{done.stderr}")
        cls.binary = {service["name"]: service for service in json.loads(done.stdout)}

    def test_every_service_of_the_binary_has_a_values_entry_and_no_other(self) -> None:
        self.assertEqual(sorted(self.binary), sorted(SERVICES))

    def test_ports_data_and_callees_match_the_binary(self) -> None:
        for name, service in SERVICES.items():
            with self.subTest(service=name):
                served = self.binary[name]
                self.assertEqual(service["ports"], {"grpc": served["grpc"], "metrics": served["metrics"]})
                self.assertEqual(bool(service.get("database")), served["database"])
                if served["database"]:
                    self.assertEqual(service.get("calls", []), served["calls"])
                    self.assertEqual(service.get("follows", []), served["follows"])
                    self.assertEqual(service.get("area"), name, "a data service is routed under its own name")

    def test_the_image_exposes_every_services_ports(self) -> None:
        exposed = [line for line in Image.DOCKERFILE.splitlines() if line.startswith("EXPOSE ")]
        self.assertEqual(len(exposed), 1, exposed)
        ports = sorted(int(port) for port in exposed[0].split()[1:])
        self.assertEqual(ports, sorted(p for service in SERVICES.values() for p in service["ports"].values()))


class Image(unittest.TestCase):
    DOCKERFILE = (chart.ROOT / "Dockerfile").read_text()

    def stages(self) -> list[list[str]]:
        """The Dockerfile's instructions per stage, continuation lines joined."""
        text = re.sub(r"\\\n\s*", " ", self.DOCKERFILE)
        stages: list[list[str]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.upper().startswith("FROM "):
                stages.append([])
            stages[-1].append(line)
        return stages

    def test_build_stage_runs_the_ci_release_build(self) -> None:
        build, _ = self.stages()
        runs = [line for line in build if line.startswith("RUN ")]
        commands = [part.strip() for run in runs for part in run.split("&&") if "cargo " in part]
        self.assertEqual(len(commands), 1, commands)
        self.assertTrue(commands[0].endswith("cargo build --release --locked -p rapport"), commands[0])
        # scripts/image-build-stage.sh (make test-deploy) runs the line it finds here.
        script = (chart.ROOT / "scripts" / "image-build-stage.sh").read_text()
        self.assertIn("grep -oE '^[[:space:]]*cargo build", script)
        self.assertIn("ENV SQLX_OFFLINE=true", build)

    def test_final_stage_is_minimal_and_non_root(self) -> None:
        _, final = self.stages()
        self.assertRegex(final[0], r"^FROM gcr\.io/distroless/cc-debian\d+:nonroot$")
        self.assertIn("USER 65532:65532", final)
        self.assertIn('ENTRYPOINT ["rapport"]', final)
        self.assertFalse([line for line in final if line.startswith("RUN ")], "no shell in the final stage")

    def test_build_context_holds_the_workspace(self) -> None:
        sys.path.insert(0, str(chart.ROOT / "scripts"))
        import image_context

        files = set(image_context.context_files())
        with open(chart.ROOT / "Cargo.toml", "rb") as file:
            members = tomllib.load(file)["workspace"]["members"]
        for member in members:
            self.assertIn(f"{member}/Cargo.toml", files)
        self.assertIn("Cargo.lock", files)
        self.assertFalse([f for f in files if f.startswith(("helm/", "k8s/", ".git/", "tests/browser/")) or "/target/" in f])


if __name__ == "__main__":
    unittest.main(verbosity=2)
