"""The simulated cluster behaves like the real one the reference describes (fast, sim time)."""

import json
from collections import Counter

import pytest

from dashboard.coverage.eligibility import evaluate
from dashboard.coverage.records import decode
from dashboard.simulator import Simulator

PROXY = "kube-system/kube-proxy"
FLUENT = "logging/fluent-bit"
EXPORTER = "monitoring/prometheus-node-exporter"
GPU = "kube-system/nvidia-device-plugin-daemonset"
EBS = "kube-system/ebs-csi-node"


@pytest.fixture
def sim():
    return Simulator.from_scenario("demo", seed=7, churn=0)


def objects(sim, resource):
    return [obj for obj, _ in sim.store.list(resource)[0]]


def ds_obj(sim, key):
    ns, name = key.split("/")
    return sim.store.get("daemonsets", ns, name)


def pods_of(sim, key):
    ds = ds_obj(sim, key)
    uid = ds["metadata"]["uid"]
    return [
        p
        for p in objects(sim, "pods")
        if any(r["uid"] == uid and r.get("controller") for r in p["metadata"]["ownerReferences"])
    ]


def target(pod):
    if pod["spec"].get("nodeName"):
        return pod["spec"]["nodeName"]
    term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return term["nodeSelectorTerms"][0]["matchFields"][0]["values"][0]


def worker(sim, pool="general"):
    return next(n for n, s in sim.nodes.items() if s.pool.name == pool)


def expected_status(sim, key):
    """DaemonSet status recomputed from the store alone, with the engine's rules (docs/cells.md,
    counters)."""
    ds = ds_obj(sim, key)
    rec = decode("DaemonSet", ds)
    revisions = [
        r
        for r in objects(sim, "controllerrevisions")
        if r["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    ]
    current = max(revisions, key=lambda r: r["revision"])["metadata"]["labels"][
        "controller-revision-hash"
    ]
    by_node = {}
    for p in pods_of(sim, key):
        if p["status"].get("phase") in ("Failed", "Succeeded") and p["metadata"].get(
            "deletionTimestamp"
        ):
            continue
        by_node.setdefault(target(p), []).append(p)
    counts = dict.fromkeys(("desired", "current", "ready", "updated", "misscheduled"), 0)
    for node in objects(sim, "nodes"):
        name = node["metadata"]["name"]
        pods = by_node.get(name, [])
        if evaluate(rec, decode("Node", node)).should_run:
            counts["desired"] += 1
            if pods:
                counts["current"] += 1
                oldest = min(
                    pods,
                    key=lambda p: (
                        not p["spec"].get("nodeName"),
                        p["metadata"]["creationTimestamp"],
                        p["metadata"]["name"],
                    ),
                )
                conds = {c["type"]: c["status"] for c in oldest["status"].get("conditions", [])}
                counts["ready"] += conds.get("Ready") == "True"
                counts["updated"] += (
                    oldest["metadata"]["labels"]["controller-revision-hash"] == current
                )
        elif pods:
            counts["misscheduled"] += 1
    return counts


def actual_status(sim, key):
    s = ds_obj(sim, key)["status"]
    return {
        "desired": s["desiredNumberScheduled"],
        "current": s["currentNumberScheduled"],
        "ready": s["numberReady"],
        "updated": s.get("updatedNumberScheduled", 0),
        "misscheduled": s["numberMisscheduled"],
    }


def unavailable_nodes(sim, key):
    """Eligible nodes without an available, non-terminating pod of the DaemonSet."""
    rec = decode("DaemonSet", ds_obj(sim, key))
    ok = set()
    for p in pods_of(sim, key):
        conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        if conds.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
            ok.add(target(p))
    return sum(
        1
        for n in objects(sim, "nodes")
        if evaluate(rec, decode("Node", n)).should_run and n["metadata"]["name"] not in ok
    )


# --------------------------------------------------------------------------- scenarios


def test_demo_scenario_has_the_typical_mix():
    sim = Simulator.from_scenario("demo", seed=1)
    nodes = objects(sim, "nodes")
    assert 35 <= len(nodes) <= 45
    pools = {n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] for n in nodes}
    assert {"control-plane", "general", "gpu", "windows"} <= pools
    cp = [n for n in nodes if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]]
    assert len(cp) == 3
    assert all(
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
        in n["spec"]["taints"]
        for n in cp
    )
    dss = objects(sim, "daemonsets")
    assert 7 <= len(dss) <= 9
    assert {d["metadata"]["namespace"] for d in dss} >= {"kube-system", "monitoring", "logging"}
    assert any(d["spec"]["updateStrategy"]["type"] == "OnDelete" for d in dss)
    # Settled at once: every DaemonSet has its pods, mostly Running.
    pods = objects(sim, "pods")
    assert all(p["spec"].get("nodeName") for p in pods)
    running = sum(p["status"]["phase"] == "Running" for p in pods)
    assert running / len(pods) > 0.8
    words = {
        cs["state"].get("waiting", {}).get("reason")
        for p in pods
        for cs in p["status"].get("containerStatuses", [])
    }
    assert {"CrashLoopBackOff", "ImagePullBackOff"} <= words
    # GPU plugin only on GPU nodes; the Windows exporter only on Windows.
    gpu_nodes = {
        n["metadata"]["name"] for n in nodes if "nvidia.com/gpu.present" in n["metadata"]["labels"]
    }
    assert {target(p) for p in pods_of(sim, GPU)} == gpu_nodes
    assert actual_status(sim, "monitoring/windows-exporter")["desired"] == 1


def test_objects_have_the_fixture_shapes(fixtures_dir):
    sim = Simulator.from_scenario("demo", seed=1)
    fixture_pod = json.loads((fixtures_dir / "pod-daemonset-owned-running-eks.json").read_text())
    pod = next(p for p in pods_of(sim, FLUENT) if p["status"]["phase"] == "Running")
    for part in ("metadata", "spec", "status"):
        missing = set(fixture_pod[part]) - set(pod[part])
        assert not missing - {"hostNetwork"}, (part, missing)
    assert pod["apiVersion"] == "v1" and pod["kind"] == "Pod"
    tolerations = {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tolerations
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerations
    assert (
        "node.kubernetes.io/network-unavailable",
        "NoSchedule",
    ) not in tolerations  # no hostNetwork
    assert 4000 < len(json.dumps(pod, separators=(",", ":"))) < 9000
    fixture_node = json.loads((fixtures_dir / "node-eks-ready-worker.json").read_text())
    node = objects(sim, "nodes")[0]
    for part in ("metadata", "spec", "status"):
        assert set(fixture_node[part]) - set(node[part]) <= {"images"}
    fixture_ds = json.loads((fixtures_dir / "daemonset-efa-device-plugin-eks.json").read_text())
    ds = ds_obj(sim, PROXY)
    # numberUnavailable is omitempty: absent when every pod is available.
    assert set(fixture_ds["status"]) - set(ds["status"]) <= {"numberUnavailable"}
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    for obj in (pod, node, ds):
        decode(obj["kind"], obj)  # the engine reads them


def test_large_scenario_builds_and_steps():
    # Its build time is the kube bench's to measure (bench/kube_bench.py), not a test's.
    sim = Simulator.from_scenario("large", seed=1, churn=0)
    assert len(sim.nodes) == 1000
    assert len(sim.controller.daemonsets) == 20
    assert sim.store.count("pods") > 15_000
    sim.step(5)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_store():
    def run():
        sim = Simulator.from_scenario("demo", seed=3, churn=30)
        sim.rollout(PROXY)
        for _ in range(30):
            sim.step(10)
        return {
            r: [data for _, data in sim.store.list(r)[0]]
            for r in ("nodes", "pods", "daemonsets", "controllerrevisions")
        }, sim.store.resource_version

    assert run() == run()


def test_status_counts_follow_the_rules(sim):
    sim.set_node_ready(worker(sim), "Unknown")
    sim.taint(worker(sim, "arm64"), "dedicated", "infra", "NoSchedule")
    sim.rollout(PROXY)
    sim.step(20)
    for key in sim.controller.daemonsets:
        assert actual_status(sim, key) == expected_status(sim, key), key


# --------------------------------------------------------------------------- nodes


def test_not_ready_node_keeps_pod_and_drops_out_of_desired(sim):
    node = worker(sim)
    before = actual_status(sim, FLUENT)
    sim.set_node_ready(node, "False")
    sim.step(5)
    n = sim.store.get("nodes", "", node)
    assert {(t["key"], t["effect"]) for t in n["spec"]["taints"]} >= {
        ("node.kubernetes.io/not-ready", "NoSchedule"),
        ("node.kubernetes.io/not-ready", "NoExecute"),
    }
    after = actual_status(sim, FLUENT)
    assert after["desired"] == before["desired"] - 1
    assert after["misscheduled"] == before["misscheduled"] + 1
    pods = [p for p in pods_of(sim, FLUENT) if target(p) == node]
    assert len(pods) == 1 and not pods[0]["metadata"].get("deletionTimestamp")
    ready = next(c for c in pods[0]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"  # node lifecycle controller: MarkPodsNotReady
    # kube-proxy tolerates everything: still desired there.
    assert actual_status(sim, PROXY)["desired"] == before_proxy_desired(sim)
    sim.set_node_ready(node, "True")
    sim.step(5)
    assert actual_status(sim, FLUENT)["desired"] == before["desired"]


def before_proxy_desired(sim):
    return sum(1 for s in sim.nodes.values() if s.pool.os == "linux")


def test_unknown_node_gets_unreachable_taints_and_unknown_pressure(sim):
    node = worker(sim)
    sim.set_node_ready(node, "Unknown")
    n = sim.store.get("nodes", "", node)
    assert {(t["key"], t["effect"]) for t in n["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
    conds = {c["type"]: c["status"] for c in n["status"]["conditions"]}
    assert conds["Ready"] == conds["MemoryPressure"] == "Unknown"


def test_cordon_and_pressure_keep_node_targeted(sim):
    node = worker(sim)
    desired = actual_status(sim, FLUENT)["desired"]
    sim.cordon(node, True)
    sim.set_pressure(node, "MemoryPressure", True)
    sim.step(3)
    n = sim.store.get("nodes", "", node)
    assert n["spec"]["unschedulable"] is True
    assert {t["key"] for t in n["spec"]["taints"]} >= {
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/memory-pressure",
    }
    assert actual_status(sim, FLUENT)["desired"] == desired


def test_no_execute_taint_deletes_the_pod(sim):
    node = worker(sim)
    sim.taint(node, "maintenance", "true", "NoExecute")
    sim.step(1)
    pods = [p for p in pods_of(sim, FLUENT) if target(p) == node]
    assert pods and all(p["metadata"].get("deletionTimestamp") for p in pods)  # Terminating
    sim.step(10)
    assert not [p for p in pods_of(sim, FLUENT) if target(p) == node]
    # kube-proxy tolerates everything: untouched.
    assert [p for p in pods_of(sim, PROXY) if target(p) == node]


def test_node_join_is_not_ready_first_then_gets_pods(sim):
    name = sim.add_node("general")
    n = sim.store.get("nodes", "", name)
    assert next(c for c in n["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"
    assert n["spec"]["taints"] == [{"effect": "NoSchedule", "key": "node.kubernetes.io/not-ready"}]
    sim.step(2)
    # Only DaemonSets tolerating not-ready:NoSchedule (Exists) start before Ready.
    assert [p for p in pods_of(sim, PROXY) if target(p) == name]
    assert not [p for p in pods_of(sim, FLUENT) if target(p) == name]
    sim.step(40)
    assert sim.nodes[name].ready == "True"
    pods = [p for p in pods_of(sim, FLUENT) if target(p) == name]
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Running"


def test_node_removal_pods_are_garbage_collected(sim):
    node = worker(sim)
    assert node in {target(p) for p in objects(sim, "pods")}
    sim.remove_node(node)
    sim.step(30)
    assert node not in {target(p) for p in objects(sim, "pods")}
    for key in sim.controller.daemonsets:
        assert actual_status(sim, key) == expected_status(sim, key)


# --------------------------------------------------------------------------- pods


def test_crash_loop_restart_count_grows_with_back_off(sim):
    node = worker(sim)
    sim.crash_pod(PROXY, node)
    seen = []
    for _ in range(200):
        sim.step(1)
        (pod,) = [p for p in pods_of(sim, PROXY) if target(p) == node]
        cs = pod["status"]["containerStatuses"][0]
        waiting = cs["state"].get("waiting")
        if waiting and waiting["reason"] == "CrashLoopBackOff":
            if not seen or seen[-1][0] != cs["restartCount"]:
                seen.append((cs["restartCount"], waiting["message"]))
            assert cs["lastState"]["terminated"]["reason"] == "Error"
            assert cs["lastState"]["terminated"]["exitCode"] == 1
    counts = [c for c, _ in seen]
    assert counts == sorted(counts) and len(counts) >= 3
    assert seen[0][1].startswith("back-off 10s restarting failed container=kube-proxy pod=")
    assert seen[1][1].startswith("back-off 20s") and seen[2][1].startswith("back-off 40s")
    assert f"_kube-system({pod['metadata']['uid']})" in seen[0][1]
    sim.fix_pod(PROXY, node)
    sim.step(400)
    (pod,) = [p for p in pods_of(sim, PROXY) if target(p) == node]
    assert pod["status"]["containerStatuses"][0]["ready"] is True


def test_failed_pod_is_recreated_with_back_off(sim):
    node = worker(sim)
    sim.fail_pod(FLUENT, node)
    times = []
    for _ in range(300):
        sim.step(0.5)
        pods = [p for p in pods_of(sim, FLUENT) if target(p) == node]
        if (
            pods
            and pods[0]["status"]["phase"] != "Failed"
            and (not times or times[-1][1] != pods[0]["metadata"]["name"])
        ):
            times.append((sim.t, pods[0]["metadata"]["name"]))
            sim.fail_pod(FLUENT, node)  # it keeps being rejected
    gaps = [b[0] - a[0] for a, b in zip(times, times[1:], strict=False)]
    # 1 s doubling: the later re-creations wait much longer than the first ones.
    assert len(gaps) >= 4 and gaps[-1] > 4 * gaps[0], gaps


def test_image_pull_errors_alternate():
    sim = Simulator.from_scenario("demo", seed=2, churn=0)
    seen = set()
    for _ in range(60):
        sim.step(5)
        for p in pods_of(sim, "kube-system/node-problem-detector"):
            assert p["status"]["phase"] == "Pending"
            seen.add(p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"])
    assert seen == {"ErrImagePull", "ImagePullBackOff"}


# --------------------------------------------------------------------------- rollouts


def test_rolling_update_respects_max_unavailable(sim):
    ds = ds_obj(sim, PROXY)
    desired = ds["status"]["desiredNumberScheduled"]
    max_unavailable = -(-10 * desired // 100)  # 10 %, rounded up
    sim.rollout(
        PROXY,
        image="602401143452.dkr.ecr.us-east-2.amazonaws.com/eks/kube-proxy:v1.31.4-minimal-eksbuild.1",
    )
    sim.step(0.5)
    stale = ds_obj(sim, PROXY)
    assert stale["status"]["observedGeneration"] < stale["metadata"]["generation"]
    worst = 0
    for _ in range(600):
        sim.step(0.5)
        worst = max(worst, unavailable_nodes(sim, PROXY))
        status = ds_obj(sim, PROXY)["status"]
        if (
            status["observedGeneration"] == 2
            and status.get("updatedNumberScheduled") == status["numberAvailable"] == desired
        ):
            break
    assert 0 < worst <= max_unavailable
    assert status["observedGeneration"] == ds_obj(sim, PROXY)["metadata"]["generation"] == 2
    assert status["updatedNumberScheduled"] == desired
    images = {p["spec"]["containers"][0]["image"] for p in pods_of(sim, PROXY)}
    assert images == {
        "602401143452.dkr.ecr.us-east-2.amazonaws.com/eks/kube-proxy:v1.31.4-minimal-eksbuild.1"
    }


def test_max_surge_runs_two_pods_on_a_node(sim):
    sim.rollout(EXPORTER)
    doubled = False
    for _ in range(400):
        sim.step(0.5)
        per_node = {}
        for p in pods_of(sim, EXPORTER):
            per_node.setdefault(target(p), []).append(p)
        doubled |= any(
            len([p for p in pods if not p["metadata"].get("deletionTimestamp")]) == 2
            for pods in per_node.values()
        )
        status = ds_obj(sim, EXPORTER)["status"]
        if (
            status["observedGeneration"] == 2
            and status.get("updatedNumberScheduled") == status["desiredNumberScheduled"]
            and doubled
        ):
            break
    assert doubled
    assert status["updatedNumberScheduled"] == status["desiredNumberScheduled"]
    assert (
        unavailable_nodes(sim, EXPORTER) == 0
        or status["numberAvailable"] <= status["desiredNumberScheduled"]
    )


def test_on_delete_stays_outdated_until_pods_are_deleted(sim):
    sim.rollout(GPU, image="nvcr.io/nvidia/k8s-device-plugin:v0.17.1")
    sim.step(120)
    status = ds_obj(sim, GPU)["status"]
    assert status["observedGeneration"] == 2
    assert status.get("updatedNumberScheduled", 0) == 0
    node = worker(sim, "gpu")
    sim.delete_pod(GPU, node)
    sim.step(30)
    (pod,) = [p for p in pods_of(sim, GPU) if target(p) == node]
    assert pod["spec"]["containers"][0]["image"].endswith("v0.17.1")
    assert ds_obj(sim, GPU)["status"]["updatedNumberScheduled"] == 1


def test_controller_revisions_bookkeeping(sim):
    def revisions():
        uid = ds_obj(sim, PROXY)["metadata"]["uid"]
        return sorted(
            (
                r["revision"],
                r["metadata"]["name"],
                r["metadata"]["labels"]["controller-revision-hash"],
            )
            for r in objects(sim, "controllerrevisions")
            if r["metadata"]["ownerReferences"][0]["uid"] == uid
        )

    (first,) = revisions()
    assert first[0] == 1 and first[1] == f"kube-proxy-{first[2]}"
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods_of(sim, PROXY)} == {
        first[2]
    }
    sim.rollout(PROXY)
    sim.step(300)
    old, new = revisions()
    assert (old[0], new[0]) == (1, 2) and old[2] != new[2]
    labels = [p["metadata"]["labels"] for p in pods_of(sim, PROXY)]
    assert {lab["controller-revision-hash"] for lab in labels} == {new[2]}
    assert {lab["pod-template-generation"] for lab in labels} == {"2"}
    cr = sim.store.get("controllerrevisions", "kube-system", new[1])
    assert cr["data"]["spec"]["template"]["$patch"] == "replace"
    assert cr["metadata"]["ownerReferences"][0]["controller"] is True


def test_delete_and_add_daemonset(sim):
    sim.delete_daemonset(FLUENT)
    sim.step(10)
    assert sim.store.get("daemonsets", "logging", "fluent-bit") is None
    assert not [p for p in objects(sim, "pods") if p["metadata"]["namespace"] == "logging"]
    assert not [
        r for r in objects(sim, "controllerrevisions") if r["metadata"]["namespace"] == "logging"
    ]
    key = sim.add_daemonset("fluent-bit")
    sim.step(30)
    assert actual_status(sim, key) == expected_status(sim, key)
    assert actual_status(sim, key)["current"] == actual_status(sim, key)["desired"] > 0


def test_the_collected_demo_is_anchored_at_the_present():
    """A simulated cluster that the dashboard collects runs on today's clock: ages and
    "last exit … ago" read as real time, not as months before a fixed date."""
    from datetime import timedelta

    from dashboard.clusters.config import ClusterConfig
    from dashboard.collect.sources import SimulatedSource
    from dashboard.coverage.timefmt import utcnow

    source = SimulatedSource(ClusterConfig(slug="s", name="s", scenario="demo"))
    assert abs(source.simulator.now - utcnow()) < timedelta(seconds=30)
    created = [
        json.loads(data)["metadata"]["creationTimestamp"]
        for _, data in source.simulator.store.list("nodes")[0]
    ]
    assert max(created) >= (utcnow() - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_churn_never_empties_a_pool():
    # Joins grow a random worker's pool and leaves take any worker, so without a floor a
    # small pool died out for good within hours of demo churn (the GPU pool did, and a
    # browser test that previews a GPU DaemonSet found no node to target).
    sim = Simulator.from_scenario("demo", seed=5, churn=60)
    started = Counter(state.pool.name for state in sim.nodes.values())
    for _ in range(300):
        sim.churn._leave_anyway()
    left = Counter(state.pool.name for state in sim.nodes.values())
    for pool, count in started.items():
        assert left[pool] >= max(1, count // 2), (pool, count, left[pool])
    assert left["general"] < started["general"]  # the leaves did happen


def test_store_listeners_hear_every_change_a_watcher_would_see():
    """How the collector's doorbell learns of news (collect/coalescing.py): every write,
    delete, compaction and restore calls the listeners; unsubscribing stops it."""
    from dashboard.simulator.store import ObjectStore

    store = ObjectStore()
    heard: list[int] = []
    listener = lambda: heard.append(store.resource_version)  # noqa: E731
    store.subscribe(listener)
    store.put("nodes", {"metadata": {"name": "n1"}})
    snap = store.snapshot()
    store.put("nodes", {"metadata": {"name": "n2"}})
    store.delete("nodes", "", "n2")
    store.compact()
    store.restore(snap)
    assert len(heard) == 5
    assert store.get("nodes", "", "n1") is not None  # reads are not changes
    assert len(heard) == 5
    store.unsubscribe(listener)
    store.put("nodes", {"metadata": {"name": "n3"}})
    assert len(heard) == 5


def test_a_drain_never_sees_half_of_a_simulator_step():
    """A step writes one instant of the cluster; a collector draining meanwhile (adaptive
    coalescing drains 10 ms after the last write) waits for the step's end instead of
    publishing half of it. The step here pauses between its two writes until the drain
    had every chance to finish: before the fix it returned the first write alone."""
    import threading

    from dashboard.clusters.config import ClusterConfig
    from dashboard.collect.sources import SimulatedSource
    from dashboard.coverage.events import Change
    from dashboard.coverage.records import record_key

    source = SimulatedSource(ClusterConfig(slug="s", name="s", scenario="demo", churn=0.0))
    sim = source.simulator
    source.drain()  # the initial lists
    first, second = sorted(sim.nodes)[:2]
    halfway, resume = threading.Event(), threading.Event()

    def relabel(name: str) -> None:
        obj = sim.store.get("nodes", "", name)
        assert obj is not None
        labels = {**obj["metadata"].get("labels", {}), "step": "one"}
        sim.store.put("nodes", {**obj, "metadata": {**obj["metadata"], "labels": labels}})

    def two_writes_of_one_instant() -> None:
        relabel(first)
        halfway.set()
        assert resume.wait(30)
        relabel(second)

    sim.at(0.0, two_writes_of_one_instant)
    stepper = threading.Thread(target=sim.step, args=(0.1,))
    stepper.start()
    assert halfway.wait(30)
    drained: list = []
    drainer = threading.Thread(target=lambda: drained.append(source.drain()))
    drainer.start()
    drainer.join(timeout=1.0)  # the old drain is done by now, holding half the step
    resume.set()
    stepper.join(30)
    drainer.join(30)
    [events] = drained
    nodes = {record_key(e.record) for e in events if isinstance(e, Change)}
    assert {first, second} <= nodes
