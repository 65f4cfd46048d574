"""Scenarios: which nodes and DaemonSets a simulated cluster starts with.

`demo` is a small, varied cluster (≈40 nodes, 8 typical DaemonSets) whose every cell
state shows up within minutes. `large` scales the same mix up to 15,000 nodes × 40
DaemonSets for benchmarks. Both start *settled*: pods already bound and mostly Running,
written directly rather than simulated transition by transition, so a client lists a
meaningful matrix at once; churn starts from there.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import objects, static_pods

if TYPE_CHECKING:
    from .cluster import Simulator

Obj = dict[str, Any]

EXISTS_ALL = [{"operator": "Exists"}]
LINUX = {"kubernetes.io/os": "linux"}
BROKEN_IMAGE = "registry.k8s.io/node-problem-detector/node-problem-detector:v0.8.99"


def _env(*pairs: tuple[str, str]) -> list[Obj]:
    return [{"name": k, "value": v} for k, v in pairs]


_NODE_NAME_ENV = {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}  # fmt: skip
_POD_NAMESPACE_ENV = {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}  # fmt: skip


def container(
    name: str,
    image: str,
    *,
    args: list[str] | None = None,
    env: list[Obj] | None = None,
    mounts: Sequence[tuple[str, str, bool]] = (),
    cpu: str = "50m",
    memory: str = "64Mi",
    limit_memory: str | None = "256Mi",
    port: int | None = None,
    privileged: bool = False,
    probe_path: str | None = None,
) -> Obj:
    c: Obj = {
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "name": name,
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"mountPath": path, "name": vol, **({"readOnly": True} if ro else {})}
            for vol, path, ro in mounts
        ],
    }
    if limit_memory:
        c["resources"]["limits"] = {"memory": limit_memory}
    if args:
        c["args"] = args
    if env:
        c["env"] = env
    if port:
        c["ports"] = [
            {"containerPort": port, "hostPort": port, "name": "metrics", "protocol": "TCP"}
        ]
    if probe_path and port:
        probe = {"failureThreshold": 3, "httpGet": {"path": probe_path, "port": port, "scheme": "HTTP"},
                 "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 5}  # fmt: skip
        c["livenessProbe"] = {**probe, "initialDelaySeconds": 10}
        c["readinessProbe"] = probe
    c["securityContext"] = (
        {"privileged": True}
        if privileged
        else {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,
        }  # fmt: skip
    )
    return c


def host_path(name: str, path: str, type_: str = "") -> Obj:
    return {"hostPath": {"path": path, "type": type_}, "name": name}


def pod_spec(
    containers: list[Obj],
    volumes: list[Obj],
    *,
    tolerations: list[Obj] | None = None,
    node_selector: Obj | None = None,
    host_network: bool = False,
    priority: str = "system-node-critical",
    service_account: str | None = None,
    init: list[Obj] | None = None,
    affinity: Obj | None = None,
) -> Obj:
    spec: Obj = {
        "containers": containers,
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "priorityClassName": priority,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "serviceAccountName": service_account or "default",
        "terminationGracePeriodSeconds": 30,
        "volumes": volumes,
    }
    if tolerations:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    if host_network:
        spec["hostNetwork"] = True
        spec["hostPID"] = False
    if init:
        spec["initContainers"] = init
    if affinity:
        spec["affinity"] = affinity
    return spec


def _ds(ns: str, name: str, spec: Obj, **kw: Any) -> Obj:
    return objects.daemonset(ns, name, spec, **kw)


def catalog() -> dict[str, tuple[Obj, float, str]]:
    """The demo DaemonSets: name -> (DaemonSet object, crash-loop share, crash exit style)."""
    proxy = _ds("kube-system", "kube-proxy", pod_spec(
        [container("kube-proxy", "602401143452.dkr.ecr.us-east-2.amazonaws.com/eks/kube-proxy:v1.31.3-minimal-eksbuild.2",
                   args=["--v=2", "--config=/var/lib/kube-proxy-config/config", "--hostname-override=$(NODE_NAME)"],
                   env=[_NODE_NAME_ENV], privileged=True, cpu="100m", limit_memory=None,
                   mounts=[("varlog", "/var/log", False), ("xtables-lock", "/run/xtables.lock", False),
                           ("lib-modules", "/lib/modules", True), ("kubeconfig", "/var/lib/kube-proxy/", False),
                           ("config", "/var/lib/kube-proxy-config/", False)])],
        [host_path("varlog", "/var/log"), host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
         host_path("lib-modules", "/lib/modules"),
         {"configMap": {"defaultMode": 420, "name": "kube-proxy"}, "name": "kubeconfig"},
         {"configMap": {"defaultMode": 420, "name": "kube-proxy-config"}, "name": "config"}],
        tolerations=EXISTS_ALL, node_selector=LINUX, host_network=True, service_account="kube-proxy",
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "eks.amazonaws.com/compute-type", "operator": "NotIn",
                                   "values": ["fargate", "hybrid", "auto"]}]}]}}}),
        labels={"k8s-app": "kube-proxy"}, max_unavailable="10%")  # fmt: skip
    cilium = _ds("kube-system", "cilium", pod_spec(
        [container("cilium-agent", "quay.io/cilium/cilium:v1.16.4@sha256:d55ec38938854133e06739b1af237932b9c4dd4e75e9b7b2ca3acc72540a44bf",
                   args=["--config-dir=/tmp/cilium/config-map"], privileged=True, cpu="100m", memory="512Mi",
                   limit_memory=None, port=9962, probe_path="/healthz",
                   env=[_NODE_NAME_ENV, _POD_NAMESPACE_ENV, *_env(("CILIUM_CLUSTERMESH_CONFIG", "/var/lib/cilium/clustermesh/"),
                        ("GOMEMLIMIT", "1GiB"), ("KUBERNETES_SERVICE_HOST", "api.internal"), ("KUBERNETES_SERVICE_PORT", "443"))],
                   mounts=[("bpf-maps", "/sys/fs/bpf", False), ("cilium-run", "/var/run/cilium", False),
                           ("cni-path", "/host/opt/cni/bin", False), ("etc-cni-netd", "/host/etc/cni/net.d", False),
                           ("clustermesh-secrets", "/var/lib/cilium/clustermesh", True),
                           ("lib-modules", "/lib/modules", True), ("xtables-lock", "/run/xtables.lock", False),
                           ("hubble-tls", "/var/lib/cilium/tls/hubble", True), ("tmp", "/tmp", False)])],
        [host_path("bpf-maps", "/sys/fs/bpf", "DirectoryOrCreate"), host_path("cilium-run", "/var/run/cilium", "DirectoryOrCreate"),
         host_path("cni-path", "/opt/cni/bin", "DirectoryOrCreate"), host_path("etc-cni-netd", "/etc/cni/net.d", "DirectoryOrCreate"),
         host_path("lib-modules", "/lib/modules"), host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
         {"name": "clustermesh-secrets", "projected": {"defaultMode": 256, "sources": [
             {"secret": {"name": "cilium-clustermesh", "optional": True}}]}},
         {"name": "hubble-tls", "projected": {"defaultMode": 256, "sources": [
             {"secret": {"items": [{"key": "tls.crt", "path": "server.crt"}, {"key": "tls.key", "path": "server.key"}],
                         "name": "hubble-server-certs", "optional": True}}]}},
         {"emptyDir": {}, "name": "tmp"}],
        tolerations=EXISTS_ALL, node_selector=LINUX, host_network=True, service_account="cilium",
        init=[container("install-cni-binaries", "quay.io/cilium/cilium:v1.16.4", args=["/install-plugin.sh"],
                        mounts=[("cni-path", "/host/opt/cni/bin", False)], cpu="100m", memory="10Mi", limit_memory=None)]),
        labels={"k8s-app": "cilium"}, max_unavailable="10%")  # fmt: skip
    fluent = _ds("logging", "fluent-bit", pod_spec(
        [container("fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.2.2", port=2020, probe_path="/api/v1/health",
                   args=["--workdir=/fluent-bit/etc", "--config=/fluent-bit/etc/conf/fluent-bit.conf"],
                   env=[_NODE_NAME_ENV, *_env(("FLB_LOG_LEVEL", "info"), ("AWS_REGION", "us-east-2"))],
                   cpu="100m", memory="128Mi", limit_memory="512Mi",
                   mounts=[("config", "/fluent-bit/etc/conf", False), ("varlog", "/var/log", False),
                           ("varlibcontainers", "/var/lib/containerd", True), ("etcmachineid", "/etc/machine-id", True)])],
        [{"configMap": {"defaultMode": 420, "name": "fluent-bit"}, "name": "config"}, host_path("varlog", "/var/log"),
         host_path("varlibcontainers", "/var/lib/containerd"), host_path("etcmachineid", "/etc/machine-id", "File")],
        tolerations=[{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
        node_selector=LINUX, priority="system-cluster-critical", service_account="fluent-bit"),
        labels={"app.kubernetes.io/instance": "fluent-bit"}, pod_annotations={"fluentbit.io/exclude": "true"})  # fmt: skip
    exporter = _ds("monitoring", "prometheus-node-exporter", pod_spec(
        [container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", port=9100, probe_path="/",
                   args=["--path.procfs=/host/proc", "--path.sysfs=/host/sys", "--path.rootfs=/host/root",
                         "--path.udev.data=/host/root/run/udev/data", "--web.listen-address=[$(HOST_IP)]:9100",
                         "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|var/lib/docker/.+|var/lib/kubelet/.+)($|/)"],
                   env=_env(("HOST_IP", "0.0.0.0")), cpu="20m", memory="32Mi", limit_memory="128Mi",
                   mounts=[("proc", "/host/proc", True), ("sys", "/host/sys", True), ("root", "/host/root", True)])],
        [host_path("proc", "/proc"), host_path("sys", "/sys"), host_path("root", "/")],
        tolerations=[{"effect": "NoSchedule", "operator": "Exists"}], node_selector=LINUX, host_network=True,
        priority="system-cluster-critical", service_account="prometheus-node-exporter"),
        labels={"app.kubernetes.io/part-of": "kube-prometheus-stack", "jobLabel": "node-exporter"},
        pod_annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"},
        max_unavailable=0, max_surge=2)  # fmt: skip
    csi_mounts = [("kubelet-dir", "/var/lib/kubelet", False), ("plugin-dir", "/csi", False),
                  ("device-dir", "/dev", False)]  # fmt: skip
    ebs = _ds("kube-system", "ebs-csi-node", pod_spec(
        [container("ebs-plugin", "public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver:v1.37.0", privileged=True, port=9808,
                   probe_path="/healthz", args=["node", "--endpoint=$(CSI_ENDPOINT)", "--csi-mount-point-prefix=/var/lib/kubelet/plugins/kubernetes.io/csi/ebs.csi.aws.com/", "--logging-format=text", "--v=2"],
                   env=[_NODE_NAME_ENV, *_env(("CSI_ENDPOINT", "unix:/csi/csi.sock"))], cpu="10m", memory="40Mi",
                   mounts=csi_mounts),
         container("node-driver-registrar", "public.ecr.aws/eks-distro/kubernetes-csi/node-driver-registrar:v2.12.0-eks-1-31-7",
                   args=["--csi-address=$(ADDRESS)", "--kubelet-registration-path=$(DRIVER_REG_SOCK_PATH)", "--v=2"],
                   env=_env(("ADDRESS", "/csi/csi.sock"), ("DRIVER_REG_SOCK_PATH", "/var/lib/kubelet/plugins/ebs.csi.aws.com/csi.sock")),
                   cpu="10m", memory="40Mi", mounts=[("plugin-dir", "/csi", False), ("registration-dir", "/registration", False)]),
         container("liveness-probe", "public.ecr.aws/eks-distro/kubernetes-csi/livenessprobe:v2.14.0-eks-1-31-7",
                   args=["--csi-address=/csi/csi.sock"], cpu="10m", memory="40Mi", mounts=[("plugin-dir", "/csi", False)])],
        [host_path("kubelet-dir", "/var/lib/kubelet", "Directory"),
         host_path("plugin-dir", "/var/lib/kubelet/plugins/ebs.csi.aws.com/", "DirectoryOrCreate"),
         host_path("registration-dir", "/var/lib/kubelet/plugins_registry/", "Directory"), host_path("device-dir", "/dev", "Directory")],
        tolerations=[{"key": "CriticalAddonsOnly", "operator": "Exists"},
                     {"effect": "NoExecute", "operator": "Exists", "tolerationSeconds": 300}],
        node_selector=LINUX, service_account="ebs-csi-node-sa"),
        labels={"app": "ebs-csi-node", "app.kubernetes.io/component": "csi-driver"}, max_unavailable="10%")  # fmt: skip
    gpu = _ds("kube-system", "nvidia-device-plugin-daemonset", pod_spec(
        [container("nvidia-device-plugin-ctr", "nvcr.io/nvidia/k8s-device-plugin:v0.17.0",
                   env=_env(("FAIL_ON_INIT_ERROR", "false"), ("DEVICE_LIST_STRATEGY", "envvar"), ("MIG_STRATEGY", "none")),
                   cpu="10m", memory="20Mi", privileged=True,
                   mounts=[("device-plugin", "/var/lib/kubelet/device-plugins", False)])],
        [host_path("device-plugin", "/var/lib/kubelet/device-plugins")],
        tolerations=[{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}],
        node_selector={"nvidia.com/gpu.present": "true"}),
        labels={"name": "nvidia-device-plugin-ds"}, strategy="OnDelete")  # fmt: skip
    windows = _ds("monitoring", "windows-exporter", pod_spec(
        [container("windows-exporter", "ghcr.io/prometheus-community/windows-exporter:0.29.2", port=9182, probe_path="/health",
                   args=["--config.file=%CONTAINER_SANDBOX_MOUNT_POINT%/config.yml", "--collector.textfile.directories=%CONTAINER_SANDBOX_MOUNT_POINT%"],
                   cpu="50m", memory="64Mi", mounts=[("windows-exporter-config", "/config.yml", False)])],
        [{"configMap": {"defaultMode": 420, "name": "windows-exporter-config"}, "name": "windows-exporter-config"}],
        tolerations=[{"effect": "NoSchedule", "key": "os", "operator": "Equal", "value": "windows"}],
        node_selector={"kubernetes.io/os": "windows"}, host_network=True, priority="system-cluster-critical"),
        labels={"app.kubernetes.io/part-of": "kube-prometheus-stack"})  # fmt: skip
    npd = _ds("kube-system", "node-problem-detector", pod_spec(
        [container("node-problem-detector", BROKEN_IMAGE, privileged=True, port=20257, cpu="20m", memory="40Mi",
                   args=["--logtostderr", "--config.system-log-monitor=/config/kernel-monitor.json,/config/docker-monitor.json"],
                   env=[_NODE_NAME_ENV], mounts=[("log", "/var/log", True), ("kmsg", "/dev/kmsg", True),
                                                 ("localtime", "/etc/localtime", True)])],
        [host_path("log", "/var/log/"), host_path("kmsg", "/dev/kmsg"), host_path("localtime", "/etc/localtime", "FileOrCreate")],
        node_selector=LINUX, priority="system-node-critical", service_account="node-problem-detector"),
        labels={"app": "node-problem-detector"})  # fmt: skip
    return {
        "kube-proxy": (proxy, 0.0, "Error"),
        "cilium": (cilium, 0.0, "Error"),
        "fluent-bit": (fluent, 0.12, "Error"),
        "prometheus-node-exporter": (exporter, 0.0, "Error"),
        "ebs-csi-node": (ebs, 0.0, "Error"),
        "nvidia-device-plugin-daemonset": (gpu, 0.25, "Completed"),
        "windows-exporter": (windows, 0.0, "Error"),
        "node-problem-detector": (npd, 0.0, "Error"),
    }


# Extra agents for `large`: names of real node agents, a generic but full-sized template.
EXTRA_AGENTS = [
    ("security", "falco"), ("monitoring", "datadog-agent"), ("kube-system", "node-local-dns"),
    ("kube-system", "aws-node"), ("kube-system", "secrets-store-csi-driver"), ("kube-system", "kured"),
    ("monitoring", "dcgm-exporter"), ("istio-system", "istio-cni-node"), ("kube-system", "efs-csi-node"),
    ("monitoring", "otel-collector-agent"), ("security", "trivy-node-collector"),
    ("kube-system", "local-volume-provisioner"), ("monitoring", "promtail"), ("kube-system", "konnectivity-agent"),
    ("security", "crowdstrike-falcon"), ("kube-system", "ip-masq-agent"), ("monitoring", "kube-state-shard"),
    ("kube-system", "smb-csi-node"), ("logging", "vector-agent"), ("kube-system", "gke-metadata-server"),
    ("security", "tetragon"), ("kube-system", "nfs-csi-node"),
    # Past 30: the 15,000-node × 40 bench (bench/kube_bench.py, issue 20).
    ("monitoring", "parca-agent"), ("kube-system", "gcp-compute-persistent-disk-csi"),
    ("logging", "filebeat"), ("security", "sysdig-agent"), ("kube-system", "multus"),
    ("monitoring", "pixie-pem"), ("kube-system", "calico-node"), ("security", "kube-bench-node"),
    ("logging", "fluentd"), ("kube-system", "csi-secrets-provider-aws"),
]  # fmt: skip


def generic_agent(ns: str, name: str, i: int) -> Obj:
    image = f"ghcr.io/example-org/{name}:v{1 + i % 3}.{i % 10}.{i % 7}"
    spec = pod_spec(
        [container(name, image, port=9100 + i, probe_path="/healthz", cpu="25m", memory="64Mi",
                   args=["--node=$(NODE_NAME)", "--log-level=info", f"--metrics-port={9100 + i}"],
                   env=[_NODE_NAME_ENV, _POD_NAMESPACE_ENV, *_env(("GOMAXPROCS", "2"), ("AGENT_MODE", "daemonset"))],
                   mounts=[("host-root", "/host", True), ("run", "/var/run", False), ("config", "/etc/agent", True)]),
         container("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.78.2",
                   args=["--watched-dir=/etc/agent", f"--reload-url=http://127.0.0.1:{9100 + i}/-/reload"],
                   cpu="5m", memory="16Mi", limit_memory="32Mi", mounts=[("config", "/etc/agent", True)])],
        [host_path("host-root", "/"), host_path("run", "/var/run"),
         {"configMap": {"defaultMode": 420, "name": f"{name}-config"}, "name": "config"}],
        tolerations=[{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]
        if i % 3 == 0 else None,
        node_selector=LINUX, priority="system-node-critical" if i % 2 else "system-cluster-critical",
        service_account=name,
    )  # fmt: skip
    return objects.daemonset(ns, name, spec, labels={"app.kubernetes.io/managed-by": "Helm"},
                             max_unavailable=1 if i % 4 else "20%")  # fmt: skip


def _pool_counts(total: int, windows: bool) -> list[tuple[str, int]]:
    control = 3 if total < 2000 else 5
    win = 1 if windows else 0
    rest = total - control - win
    gpu = max(2, rest // 10)
    arm = max(2, rest // 5)
    return [("control-plane", control), ("general", rest - gpu - arm), ("arm64", arm), ("gpu", gpu),
            ("windows", win)]  # fmt: skip


SCENARIOS = {
    # name: (default nodes, default DaemonSets, default churn/min, max nodes, max DaemonSets)
    "demo": (40, 8, 6.0, 200, 30),
    # Up to the 15,000-node × 40 size managed Kubernetes runs (issue 20).
    "large": (1000, 20, 60.0, 15000, 40),
}


def build(
    cls: type[Simulator],
    name: str,
    *,
    seed: int,
    nodes: int | None,
    daemonsets: int | None,
    churn: float | None,
    start: datetime | None,
) -> Simulator:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})")
    n_default, d_default, c_default, n_max, d_max = SCENARIOS[name]
    n_nodes = min(nodes if nodes is not None else n_default, n_max)
    n_ds = min(daemonsets if daemonsets is not None else d_default, d_max)
    sim = cls(seed=seed, churn=c_default if churn is None else churn, start=start)
    sim.catalog = catalog()
    sim.bad_images.add(BROKEN_IMAGE)
    rng = sim.rng
    now = sim.t

    # Nodes, already Ready, created over the last days (control plane first).
    pools = _pool_counts(n_nodes, windows=True)
    sim.pools_in_use = [p for p, count in pools if count]
    for pool, count in pools:
        for _ in range(count):
            age = rng.uniform(3600, 30 * 86400) if pool != "control-plane" else 40 * 86400
            sim.new_node(pool, now - age, ready=True)

    # DaemonSets: the demo mix first, then generic agents for larger counts.
    specs: list[tuple[Obj, float, str]] = list(sim.catalog.values())[:n_ds]
    for i, (ns, agent) in enumerate(EXTRA_AGENTS[: max(0, n_ds - len(specs))]):
        specs.append((generic_agent(ns, agent, i), 0.01, "Error"))
    oldest = min(s.created for s in sim.nodes.values())
    for obj, crash_rate, mode in specs:
        obj = copy.deepcopy(obj)
        obj["metadata"]["creationTimestamp"] = objects.rfc3339(oldest + 600)
        sim.controller.add(obj, crash_rate, mode)

    # Settled pods: one per eligible node, as if they had been running for a while.
    node_created = {n: s.created for n, s in sim.nodes.items()}
    for ds in sim.controller.daemonsets.values():
        assert ds.base is not None  # set by the controller when the DaemonSet is added
        for node, e in ds.elig.items():
            if e.should_run:
                crash = ds.crash_mode if rng.random() < ds.crash_rate else None
                created = max(node_created[node] + rng.uniform(10, 60), oldest + 600)
                sim.kubelet.settled(ds.base, ds.key, node, created, crash)
        ds.observed = 1
        sim.controller.recount_all(ds)
        ds.full = False
        ds.dirty = {}
        sim.controller.write_status(ds)
    # The control plane's static pods, and Services (with their slices) for two daemons:
    # the demo shows static columns and access paths (docs/access.md).
    static_pods.add_control_plane(sim)
    sim.endpoints.add_defaults()
    sim.churn.begin()
    return sim
