"""How clients reach a DaemonSet's pods: the Services that select them, their EndpointSlices,
and the ports the pods take on their node (docs/access.md).

The index keeps every Service as a small record (a selector and its ports), but
EndpointSlices only of the Services that select a DaemonSet's pods: slices carry one entry
per backing pod, and in a cluster with thousands of unrelated Services they would be most
of the memory. Which Services are related is only known once both the Services and the
DaemonSets have been seen (the lists of a first sync arrive in any order), so until then
every slice is kept, and the unrelated ones are dropped at the first flush after.

A Service that becomes related later (a new DaemonSet whose labels it selects) gets its
slices at their next change, which is when the new daemon pods join them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from msgspec import Struct

from .records import DaemonSet, EndpointSlice, HostPort, Node, Pod, Service, SliceEndpoint

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
# Labels whose value usually names the application: a Service that shares one with a
# DaemonSet's template (or its name) but selects none of its pods is worth explaining.
APP_LABELS = ("app", "app.kubernetes.io/name", "k8s-app", "name")


def selects(service: Service, ds: DaemonSet) -> bool:
    """A Service selects a DaemonSet's pods when its selector is a subset of the pod
    template's labels (same namespace). A Service without a selector selects nothing: its
    endpoints are written by hand, not by the EndpointSlice controller."""
    if not service.selector or service.namespace != ds.namespace:
        return False
    labels = ds.template_labels
    return all(labels.get(k) == v for k, v in service.selector.items())


def meant_for(service: Service, ds: DaemonSet) -> bool:
    """Looks like it was written for this DaemonSet: same name, or the same app label."""
    if service.namespace != ds.namespace:
        return False
    if service.name == ds.name:
        return True
    wanted = {v for k in APP_LABELS if (v := ds.template_labels.get(k))} | {ds.name}
    mine = service.selector or {}
    return any(mine.get(k) in wanted or service.labels.get(k) in wanted for k in APP_LABELS)


def mismatch_reason(service: Service, ds: DaemonSet) -> str:
    """Why a Service meant for a DaemonSet does not select its pods, in one line."""
    if not service.selector:
        return (
            f"Service {service.key} has no selector: its endpoints are managed by hand, "
            f"so the DaemonSet's pods never join them"
        )
    labels = ds.template_labels
    wrong = []
    for k, v in sorted(service.selector.items()):
        have = labels.get(k)
        if have is None:
            wrong.append(f"{k}={v} (the pod template has no label {k})")
        elif have != v:
            wrong.append(f"{k}={v} (the pod template has {k}={have})")
    return f"Service {service.key} selects none of its pods: selector " + ", ".join(wrong)


def resolve_target(target: int | str, protocol: str, ds: DaemonSet) -> int | None:
    """A Service port's targetPort on this DaemonSet's pods: a number as is, a name through
    the containers' declared ports (same protocol); None when no container declares it."""
    if isinstance(target, int):
        return target
    for p in ds.container_ports:
        if p.name == target and p.protocol == protocol:
            return p.port
    return None


def dns_name(service: Service, domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    return f"{service.name}.{service.namespace}.svc.{domain}"


def pod_dns_name(
    service: Service, endpoint: SliceEndpoint, domain: str = DEFAULT_CLUSTER_DOMAIN
) -> str:
    """The per-pod A record of a headless Service: the endpoint's hostname when the pod
    sets hostname and subdomain, else (as CoreDNS names it) its address with dashes."""
    label = endpoint.hostname or endpoint.address.replace(".", "-").replace(":", "-")
    return f"{label}.{dns_name(service, domain)}"


class PortClaim(NamedTuple):
    """The host ports one pod takes on its node, and what preemption would weigh."""

    ports: tuple[HostPort, ...]
    holder: str  # "pod ns/x", "DaemonSet ns/d (pod d-1)", "static pod ns/x"
    priority: int
    mirror: bool


class PortHolder(Struct, frozen=True, gc=False, array_like=True):
    """A pod holding a host port a daemon wants on that node (coverage JSON: the cell's
    `port_holders`)."""

    pod: str  # namespace/name
    holder: str
    ports: tuple[str, ...]  # "TCP/9100"
    priority: int
    static: bool


class CellAccess(Struct, frozen=True, gc=False):
    addresses: tuple[str, ...] = ()
    # None: no Service selects the DaemonSet; True: ready in every selecting Service's
    # slices; False: missing from one, or listed there but not ready (terminating).
    in_service_endpoints: bool | None = None
    out_of_endpoints: bool = False  # the pod runs, but a Service's clients miss it
    note: str = ""  # why it is out of the endpoints, or who holds its host ports
    port_conflict: bool = False
    dns: tuple[str, ...] = ()  # per-pod records of headless Services


NO_ACCESS = CellAccess()
_VERDICTS = {v: CellAccess(in_service_endpoints=v) for v in (None, True, False)}


class AccessIndex:
    def __init__(self) -> None:
        self.services: dict[str, Service] = {}
        self.slices: dict[str, EndpointSlice] = {}
        self._services_by_ns: defaultdict[str, dict[str, Service]] = defaultdict(dict)
        # namespace -> pod name -> its endpoints, one per slice listing it: the endpoint
        # itself when there is one (almost always), a tuple otherwise. Keyed by the name the
        # endpoint already holds, so the index adds no string per pod (bench/RESULTS.md).
        self._pod_endpoints: defaultdict[
            str, dict[str, SliceEndpoint | tuple[SliceEndpoint, ...]]
        ] = defaultdict(dict)
        # DaemonSet key -> the Services that select it (kept up to date by `relate`)
        self.selected_by: dict[str, tuple[str, ...]] = {}
        self.related: set[str] = set()  # Services selecting at least one DaemonSet
        # node -> pod key -> its claim: every pod that takes host ports
        self.port_claims: defaultdict[str, dict[str, PortClaim]] = defaultdict(dict)
        self.seen_services = False
        self.seen_daemonsets = False
        self._relations_dirty = False
        self._unjudged: set[str] = set()  # slices that arrived since the last prune

    # ------------------------------------------------------------------ Services

    def apply_service(self, deleted: bool, service: Service) -> None:
        old = self.services.pop(service.key, None)
        if old is not None:
            self._services_by_ns[old.namespace].pop(old.name, None)
        if not deleted:
            self.services[service.key] = service
            self._services_by_ns[service.namespace][service.name] = service
        if old != service or deleted:
            self._relations_dirty = True

    def daemonsets_changed(self) -> None:
        self._relations_dirty = True

    def relate(self, daemonsets: Mapping[str, DaemonSet]) -> set[str]:
        """Recompute which Services select which DaemonSets (when either changed); returns
        the DaemonSets whose set of Services changed, or whose Services did."""
        if not self._relations_dirty:
            return set()
        self._relations_dirty = False
        before = self.selected_by
        after: dict[str, tuple[str, ...]] = {}
        related: set[str] = set()
        for key, ds in daemonsets.items():
            found = tuple(
                sorted(
                    s.key
                    for s in self._services_by_ns.get(ds.namespace, {}).values()
                    if selects(s, ds)
                )
            )
            if found:
                after[key] = found
                related.update(found)
        self.selected_by, self.related = after, related
        # A column changes when its Services did (the Service objects too: ports, type).
        changed = {k for k in after.keys() | before.keys() if after.get(k) != before.get(k)}
        changed |= {k for k, svcs in after.items() if k not in changed and svcs}
        self._unjudged.update(self.slices)  # relations moved: every slice is judged again
        return changed

    def services_of(self, ds_key: str) -> list[Service]:
        return [self.services[k] for k in self.selected_by.get(ds_key, ()) if k in self.services]

    def meant_but_missing(self, ds: DaemonSet) -> list[Service]:
        """Services that look meant for this DaemonSet but select none of its pods, and no
        other DaemonSet's either (then they are simply someone else's)."""
        return [
            s
            for s in self._services_by_ns.get(ds.namespace, {}).values()
            if s.key not in self.related and meant_for(s, ds)
        ]

    # ------------------------------------------------------------------ EndpointSlices

    def apply_slice(self, deleted: bool, es: EndpointSlice) -> set[str]:
        """Index a slice; returns the pod keys whose entries changed."""
        old = self.slices.pop(es.key, None)
        before = self._entries(old) if old is not None else {}
        if old is not None:
            self._unindex(old)
        if not deleted:
            self.slices[es.key] = es
            self._index(es)
            self._unjudged.add(es.key)
        after = self._entries(es) if not deleted else {}
        # Only the pods whose own entry moved: the controller rewrites a whole slice (up to
        # 100 endpoints) when one of its pods changes.
        return {
            f"{es.namespace}/{k}"
            for k in before.keys() | after.keys()
            if _listed(before.get(k)) != _listed(after.get(k))
        }

    @staticmethod
    def _entries(es: EndpointSlice) -> dict[str, SliceEndpoint]:
        return {ep.pod: ep for ep in es.endpoints if ep.pod}

    def endpoints_of(self, pod: Pod) -> tuple[SliceEndpoint, ...]:
        """Every slice entry listing this pod (the same pod in several Services' slices)."""
        found = self._pod_endpoints.get(pod.namespace, {}).get(pod.name)
        if found is None:
            return ()
        return found if isinstance(found, tuple) else (found,)

    def _index(self, es: EndpointSlice) -> None:
        index = self._pod_endpoints[es.namespace]
        for ep in es.endpoints:
            if ep.pod:
                others = index.get(ep.pod)
                if others is None:
                    index[ep.pod] = ep
                else:
                    index[ep.pod] = (*others, ep) if isinstance(others, tuple) else (others, ep)

    def _unindex(self, es: EndpointSlice) -> None:
        index = self._pod_endpoints.get(es.namespace)
        if index is None:
            return
        for ep in es.endpoints:
            if ep.pod:
                entries = index.get(ep.pod)
                if entries is None:
                    continue
                kept = tuple(
                    e
                    for e in (entries if isinstance(entries, tuple) else (entries,))
                    if e.slice != es.key
                )
                if len(kept) > 1:
                    index[ep.pod] = kept
                elif kept:
                    index[ep.pod] = kept[0]
                else:
                    del index[ep.pod]
        if not index:
            del self._pod_endpoints[es.namespace]

    def prune(self) -> None:
        """Drop the slices of Services that select no DaemonSet (once that can be told)."""
        if not (self.seen_services and self.seen_daemonsets) or not self._unjudged:
            return
        for key in self._unjudged:
            es = self.slices.get(key)
            if es is not None and es.service_key not in self.related:
                self._unindex(es)
                del self.slices[key]
        self._unjudged = set()

    # ------------------------------------------------------------------ host ports

    def apply_pod_ports(self, old: Pod | None, new: Pod | None, holder: str) -> set[str]:
        """Track every pod that takes host ports; returns the nodes whose claims changed.
        A pod's status update that keeps its claim (readiness, restarts) changes no node:
        reporting its node anyway re-classified every host-port cell of the row for each
        such event (30 cells an event in the 15,000-node churn bench)."""
        # (node, claim) before and after; equal: nothing moved.
        was: tuple[str, PortClaim] | None = None
        if old is not None and old.host_ports:
            claims = self.port_claims.get(old.node)
            if claims is not None:
                claim = claims.pop(old.key, None)
                was = (old.node, claim) if claim is not None else None
                if not claims:
                    del self.port_claims[old.node]
        now: tuple[str, PortClaim] | None = None
        if new is not None and new.host_ports and new.node and not _gone(new):
            now = (new.node, PortClaim(new.host_ports, holder, new.priority, new.mirror))
            self.port_claims[new.node][new.key] = now[1]
        if was == now:
            return set()
        return {pair[0] for pair in (was, now) if pair is not None}

    def holders(self, node: str, ports: Iterable[HostPort], mine: set[str]) -> list[str]:
        """Who else on `node` holds one of `ports` (same protocol and number): one line each."""
        wanted = {(p.port, p.protocol) for p in ports}
        out = []
        for pod_key, claim in self.port_claims.get(node, {}).items():
            if pod_key in mine:
                continue
            for p in claim.ports:
                if (p.port, p.protocol) in wanted:
                    out.append(f"{p.protocol}/{p.port} held by {claim.holder}")
        return sorted(set(out))

    def rivals(self, node: str, ports: Iterable[HostPort], mine: set[str]) -> list[PortHolder]:
        """The pods on `node` holding one of `ports`, with what preemption weighs: their
        priority, and whether the kubelet runs them from a file (a static pod)."""
        wanted = {(p.port, p.protocol) for p in ports}
        out = []
        for pod_key, claim in sorted(self.port_claims.get(node, {}).items()):
            if pod_key in mine:
                continue
            shared = tuple(
                sorted(
                    {
                        f"{p.protocol}/{p.port}"
                        for p in claim.ports
                        if (p.port, p.protocol) in wanted
                    }
                )
            )
            if shared:
                out.append(PortHolder(pod_key, claim.holder, shared, claim.priority, claim.mirror))
        return out

    # ------------------------------------------------------------------ cells

    def cell_access(
        self,
        ds: DaemonSet,
        node: Node,
        pods: list[Pod],
        described: str,
        domain: str = DEFAULT_CLUSTER_DOMAIN,
        *,
        full: bool = True,
    ) -> CellAccess:
        """The addresses that reach the daemon on this node, and whether its Services list
        it as ready. `described` names the pod the cell shows.

        With `full=False` only the verdict is computed (in the endpoints, flags, note): what
        a cell keeps. Building every cell's addresses and DNS names only to drop them was
        40 % of a 150,000-cell build's access cost (bench/RESULTS.md)."""
        pod = next((p for p in pods if p.name == described), None)
        conflicts = (
            self.holders(node.name, ds.host_ports, {p.key for p in pods}) if ds.host_ports else []
        )
        if pod is None:
            if conflicts:
                return CellAccess(note="; ".join(conflicts), port_conflict=True)
            return NO_ACCESS
        addresses: list[str] = []
        if full and node.internal_ip and not _gone(pod):
            addresses += [_join(node.internal_ip, p.port) for p in ds.host_ports]
        services = self.selected_by.get(ds.key, ())
        in_endpoints: bool | None = None
        missing: list[str] = []
        dns: list[str] = []
        if services:
            in_endpoints = True
            entries = self.endpoints_of(pod)
            for svc_key in services:
                mine_here = [e for e in entries if e.service == svc_key]
                if not mine_here:
                    in_endpoints = False
                    missing.append(f"not in the endpoints of Service {svc_key}")
                    continue
                if not any(e.ready for e in mine_here):
                    in_endpoints = False
                    why = "terminating" if any(e.terminating for e in mine_here) else "not ready"
                    missing.append(f"listed by Service {svc_key} as {why}")
                if not full:
                    continue
                svc = self.services.get(svc_key)
                for e in mine_here:
                    for address in e.addresses:
                        addresses += [_join(address, port) for port in e.ports]
                    if svc is not None and svc.headless and e.address:
                        dns.append(pod_dns_name(svc, e, domain))
        running = pod.phase == "Running"
        out = bool(running and in_endpoints is False)
        notes = (missing if out else []) + conflicts
        if out:
            notes[0] += ": clients through the Service miss this node's daemon"
        if not full and not notes:
            return _VERDICTS[in_endpoints]  # the usual cell: one shared object, no strings
        return CellAccess(
            addresses=tuple(dict.fromkeys(addresses)),
            in_service_endpoints=in_endpoints,
            out_of_endpoints=out,
            note="; ".join(notes),
            port_conflict=bool(conflicts),
            dns=tuple(dict.fromkeys(dns)),
        )

    def touches(self, ds: DaemonSet) -> bool:
        """Whether cells of this DaemonSet have anything to show of access at all."""
        return bool(ds.host_ports or ds.key in self.selected_by)


def _listed(ep: SliceEndpoint | None) -> tuple[object, ...] | None:
    """What of an endpoint a cell depends on (its slice's resourceVersion does not count)."""
    if ep is None:
        return None
    return (ep.address, ep.ready, ep.serving, ep.terminating, ep.hostname, ep.ports)


def _gone(pod: Pod) -> bool:
    return pod.phase in ("Succeeded", "Failed")


def _join(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def holder_of(pod: Pod, ds_name: str | None) -> str:
    if ds_name:
        return f"DaemonSet {pod.namespace}/{ds_name} (pod {pod.name})"
    if pod.mirror:
        return f"static pod {pod.key}"
    return f"pod {pod.key}"


# --------------------------------------------------------------------------- per DaemonSet


class PortView(Struct, frozen=True):
    name: str
    port: int
    protocol: str
    target: int | str
    container_port: int | None  # the target resolved on this DaemonSet's pods


class ServiceView(Struct, frozen=True):
    namespace: str
    name: str
    type: str
    headless: bool
    dns: str
    ports: tuple[PortView, ...]
    internal_traffic_policy: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class DaemonSetAccess(Struct, frozen=True):
    services: tuple[ServiceView, ...]
    host_ports: tuple[HostPort, ...]
    host_network: bool
    notes: tuple[str, ...]  # selector mismatches, rivals for a host port, Local policies

    @property
    def empty(self) -> bool:
        return not (self.services or self.host_ports or self.host_network or self.notes)


def daemonset_access(
    index: AccessIndex,
    ds: DaemonSet,
    daemonsets: Mapping[str, DaemonSet],
    domain: str = DEFAULT_CLUSTER_DOMAIN,
) -> DaemonSetAccess:
    services = []
    notes = []
    for svc in index.services_of(ds.key):
        ports = tuple(
            PortView(p.name, p.port, p.protocol, p.target, resolve_target(p.target, p.protocol, ds))
            for p in svc.ports
        )
        services.append(
            ServiceView(
                svc.namespace,
                svc.name,
                svc.type,
                svc.headless,
                dns_name(svc, domain),
                ports,
                svc.internal_traffic_policy,
            )
        )
        for p in ports:
            if p.container_port is None:
                notes.append(
                    f"Service {svc.key} port {p.port} targets {p.target!r}, which no container "
                    f"of the pod template declares"
                )
        if svc.internal_traffic_policy == "Local":
            notes.append(
                f"Service {svc.key} has internalTrafficPolicy Local: clients reach only their "
                f"own node's daemon, and a node without a ready one drops their traffic"
            )
    for svc in index.meant_but_missing(ds):
        notes.append(mismatch_reason(svc, ds))
    if ds.host_ports:
        wanted = {(p.port, p.protocol) for p in ds.host_ports}
        for other in daemonsets.values():
            if other.key == ds.key:
                continue
            shared = sorted(
                f"{p.protocol}/{p.port}" for p in other.host_ports if (p.port, p.protocol) in wanted
            )
            if shared:
                notes.append(
                    f"DaemonSet {other.key} wants the same host port ({', '.join(shared)}): "
                    f"on a node both target, only one of the two pods can run"
                )
    return DaemonSetAccess(tuple(services), ds.host_ports, ds.host_network, tuple(notes))
