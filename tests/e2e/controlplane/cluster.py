"""Start and stop a real Kubernetes control plane on 127.0.0.1, for the e2e tier.

    etcd  ->  kube-apiserver (token auth, RBAC)  ->  kube-controller-manager, kube-scheduler,
    kwok (simulated kubelets: node-initialize/heartbeat, pod-ready, node-not-ready, ...)

Binaries come from `build.sh` (cached outside the repository). Every process runs in its
own process group and dies with us (PR_SET_PDEATHSIG); `stop()` ends them all, newest first,
and is also registered with atexit and on SIGTERM, so nothing outlives a failed run.

An etcd restore can be played as an operator does it (`save_etcd_snapshot`, then
`restore_etcd`: every component stopped, etcd's data replaced by the snapshot, everything
started again on the same addresses), so that clients see a server whose resourceVersions
went back in time.

Used by tests/e2e/conftest.py as a session fixture; also runnable by hand:

    .venv/bin/python -m tests.e2e.controlplane.cluster up     # prints kubeconfigs, Ctrl-C stops
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.ports import free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BUILD_SCRIPT = HERE / "build.sh"
RBAC_MANIFEST = REPO / "deploy" / "rbac.yaml"
OUR_STAGES = HERE / "stages"
KWOK_STAGES = (
    "node-initialize.yaml",
    "node-heartbeat.yaml",
    "node-not-ready.yaml",
    "pod-ready.yaml",
    "pod-delete.yaml",
    "pod-complete.yaml",
    "pod-container-running-failed.yaml",
)
SA_NAMESPACE, SA_NAME = "daemonviz", "daemonviz"
HOST = "127.0.0.1"


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class Binaries:
    k8s_version: str
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    etcdctl: Path
    etcdutl: Path
    kwok: Path
    kwok_stages: Path

    @classmethod
    def from_env_file(cls, path: Path) -> Binaries:
        env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return cls(
            k8s_version=env["DAEMONVIZ_E2E_K8S_VERSION"],
            kube_apiserver=Path(env["DAEMONVIZ_E2E_KUBE_APISERVER"]),
            kube_controller_manager=Path(env["DAEMONVIZ_E2E_KUBE_CONTROLLER_MANAGER"]),
            kube_scheduler=Path(env["DAEMONVIZ_E2E_KUBE_SCHEDULER"]),
            kubectl=Path(env["DAEMONVIZ_E2E_KUBECTL"]),
            etcd=Path(env["DAEMONVIZ_E2E_ETCD"]),
            etcdctl=Path(env["DAEMONVIZ_E2E_ETCDCTL"]),
            etcdutl=Path(env["DAEMONVIZ_E2E_ETCDUTL"]),
            kwok=Path(env["DAEMONVIZ_E2E_KWOK"]),
            kwok_stages=Path(env["DAEMONVIZ_E2E_KWOK_STAGES"]),
        )

    def missing(self) -> list[str]:
        paths = (
            self.kube_apiserver,
            self.kube_controller_manager,
            self.kube_scheduler,
            self.kubectl,
            self.etcd,
            self.etcdctl,
            self.etcdutl,
            self.kwok,
        )
        return [str(p) for p in paths if not os.access(p, os.X_OK)]


def build(log: Callable[[str], None] = print) -> Binaries:
    """Run build.sh (a second or so when everything is cached) and return the binaries."""
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "all"], stdout=subprocess.PIPE, stderr=None, text=True
    )
    if proc.returncode != 0:
        raise ControlPlaneError(f"build.sh failed with exit code {proc.returncode}")
    env_file = Path(proc.stdout.strip().splitlines()[-1])
    bins = Binaries.from_env_file(env_file)
    if missing := bins.missing():
        raise ControlPlaneError(f"build.sh finished but binaries are missing: {missing}")
    log(f"control-plane binaries ready in {time.monotonic() - t0:.1f}s ({bins.k8s_version})")
    return bins


# --------------------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    bins: Binaries
    run_dir: Path
    keep_run_dir: bool = False
    log: Callable[[str], None] = print
    procs: list[Proc] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    admin_token: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    admin_kubeconfig: Path | None = None
    sa_kubeconfig: Path | None = None
    _stopped: bool = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def create(cls, bins: Binaries, log: Callable[[str], None] = print) -> ControlPlane:
        base = os.environ.get("DAEMONVIZ_E2E_RUN_DIR")
        if base:
            run_dir = Path(base)
            if run_dir.exists() and any(run_dir.iterdir()):
                if not (run_dir / "pids").exists():
                    raise ControlPlaneError(f"{run_dir} is not empty and not an old run dir")
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            _sweep_stale_run_dirs()
            run_dir = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX))
        return cls(bins=bins, run_dir=run_dir, keep_run_dir=bool(base), log=log)

    def start(self) -> ControlPlane:
        atexit.register(self.stop)
        _stop_on_sigterm(self)
        t0 = time.monotonic()
        try:
            self._write_credentials()
            self._start_etcd()
            self._start_apiserver()
            self._start_controllers()
            self._start_kwok()
            self._apply_rbac_and_make_sa_kubeconfig()
            self._wait_cluster_usable()
        except BaseException:
            self.log(self.diagnostics())
            self.stop(keep_logs=True)
            raise
        self.timings["start"] = time.monotonic() - t0
        self.log(f"control plane up in {self.timings['start']:.1f}s (run dir {self.run_dir})")
        return self

    def stop(self, keep_logs: bool = False) -> None:
        """End every process we started (newest first): SIGTERM to its group, then SIGKILL.
        The run directory (logs, etcd data, kubeconfigs) goes too, unless asked to keep it
        (a failed session, DAEMONVIZ_E2E_KEEP=1, or DAEMONVIZ_E2E_RUN_DIR set)."""
        if self._stopped:
            return
        self._stopped = True
        for proc in reversed(self.procs):
            _end_group(proc.popen)
        still = [p.name for p in self.procs if p.alive()]
        if still:
            self.log(f"WARNING: still alive after SIGKILL: {still}")
        if keep_logs or self.keep_run_dir or os.environ.get("DAEMONVIZ_E2E_KEEP"):
            self.log(f"control-plane logs kept in {self.run_dir / 'logs'}")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ outage and restore

    def save_etcd_snapshot(self, path: Path | None = None) -> Path:
        """`etcdctl snapshot save`: a consistent copy of the whole store as of now."""
        path = path or self.run_dir / f"etcd-{time.time_ns()}.snapshot"
        self._run_tool(
            self.bins.etcdctl,
            f"--endpoints=http://{HOST}:{self.ports['etcd']}",
            "snapshot",
            "save",
            str(path),
        )
        return path

    def stop_components(self) -> None:
        """End every component (newest first), keeping their data, certificates and ports:
        the cluster is down until `start_components()`."""
        for proc in reversed(self.procs):
            _end_group(proc.popen)
        if still := [p.name for p in self.procs if p.alive()]:
            raise ControlPlaneError(f"still alive after SIGKILL: {still}")
        # Ended on purpose: no longer what check_alive() watches.
        self.procs.clear()

    def restore_etcd_data(
        self, snapshot: Path, *, bump_revision: int = 0, mark_compacted: bool = False
    ) -> None:
        """Replace etcd's data by `snapshot` (`etcdutl snapshot restore`); etcd must be down.

        Without `bump_revision` the revisions (the API's resourceVersions) go back to the
        snapshot's: clients that watched the newer store hold versions from the future.
        `bump_revision` with `mark_compacted` is etcd's recommended restore for Kubernetes:
        revisions jump ahead and every older one counts as compacted, so watchers get 410.
        """
        if any(p.name == "etcd" and p.alive() for p in self.procs):
            raise ControlPlaneError("stop etcd before restoring its data")
        data = self.run_dir / "etcd"
        shutil.rmtree(self.run_dir / "etcd.before-restore", ignore_errors=True)
        if data.exists():
            data.rename(self.run_dir / "etcd.before-restore")
        peer = f"http://{HOST}:{self.ports['etcd_peer']}"
        argv = [
            "snapshot",
            "restore",
            str(snapshot),
            f"--data-dir={data}",
            "--name=e2e",
            f"--initial-cluster=e2e={peer}",
            f"--initial-advertise-peer-urls={peer}",
        ]
        if bump_revision:
            argv.append(f"--bump-revision={bump_revision}")
        if mark_compacted:
            argv.append("--mark-compacted")
        self._run_tool(self.bins.etcdutl, *argv)

    def start_components(self) -> None:
        """Start every component again, on the addresses and with the credentials it had."""
        t0 = time.monotonic()
        try:
            self._start_etcd()
            self._start_apiserver()
            self._start_controllers()
            self._start_kwok()
            self._wait_cluster_usable()
        except BaseException:
            self.log(self.diagnostics())
            raise
        self.timings["restart"] = time.monotonic() - t0
        self.log(f"control plane up again in {self.timings['restart']:.1f}s")

    def restore_etcd(self, snapshot: Path, **options: Any) -> None:
        """The whole operator's procedure: stop everything, restore, start everything.

        The Kubernetes documentation asks for the controllers (and kubelets) to be restarted
        too, since their caches hold the newer state; the dashboard's own collector, the
        client under test, keeps running throughout."""
        self.stop_components()
        self.restore_etcd_data(snapshot, **options)
        self.start_components()

    def _run_tool(self, tool: Path, *args: str) -> str:
        proc = subprocess.run(
            [str(tool), *args], capture_output=True, text=True, timeout=120, cwd=self.run_dir
        )
        if proc.returncode != 0:
            raise ControlPlaneError(
                f"{tool.name} {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stderr}{proc.stdout}"
            )
        return proc.stdout

    def check_alive(self) -> None:
        dead = [p for p in self.procs if not p.alive()]
        if dead:
            raise ControlPlaneError(
                "control-plane process(es) died: "
                + ", ".join(f"{p.name} (exit {p.popen.returncode})" for p in dead)
                + "\n"
                + "\n".join(f"--- {p.name}\n{p.tail()}" for p in dead)
            )

    def diagnostics(self) -> str:
        out = [f"control-plane run dir: {self.run_dir}"]
        for p in self.procs:
            state = "running" if p.alive() else f"exited {p.popen.returncode}"
            out.append(f"--- {p.name} ({state}), last lines of {p.log_path}:\n{p.tail(15)}")
        return "\n".join(out)

    # ------------------------------------------------------------------ pieces

    def _port(self, name: str) -> int:
        """A free port the first time; the same one when a component starts again."""
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        log_path = self.run_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log_file:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.run_dir,
                start_new_session=True,  # its own process group: stop() ends it whole
                preexec_fn=_die_with_parent,
                env={**os.environ, "GOMAXPROCS": os.environ.get("GOMAXPROCS", "2")},
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        with (self.run_dir / "pids").open("a") as pids:
            pids.write(f"{popen.pid} {name}\n")
        return proc

    def _write_credentials(self) -> None:
        d = self.run_dir / "pki"
        d.mkdir(parents=True, exist_ok=True)

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

        openssl("genrsa", "-out", "ca.key", "2048")
        openssl(
            "req", "-x509", "-new", "-key", "ca.key", "-days", "7", "-subj",
            "/CN=daemonviz-e2e-ca", "-out", "ca.crt",
        )  # fmt: skip
        openssl("genrsa", "-out", "apiserver.key", "2048")
        (d / "san.cnf").write_text(
            "[req]\ndistinguished_name=dn\n[dn]\n[ext]\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        openssl(
            "req", "-new", "-key", "apiserver.key", "-subj", "/CN=kube-apiserver",
            "-out", "apiserver.csr",
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "7", "-extfile", "san.cnf", "-extensions", "ext",
            "-out", "apiserver.crt",
        )  # fmt: skip
        openssl("genrsa", "-out", "sa.key", "2048")
        openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        # Static tokens: an admin (system:masters) for the tests and kwok; the controller
        # manager and the scheduler under their own names, bound by the bootstrap RBAC
        # policy exactly as kubeadm sets them up.
        tokens = {
            "admin": ("admin", "system:masters"),
            "controller-manager": ("system:kube-controller-manager", ""),
            "scheduler": ("system:kube-scheduler", ""),
        }
        self._tokens = {k: base64.b32encode(os.urandom(20)).decode().lower() for k in tokens}
        self.admin_token = self._tokens["admin"]
        lines = []
        for key, (user, group) in tokens.items():
            groups = f',"{group}"' if group else ""
            lines.append(f"{self._tokens[key]},{user},uid-{key}{groups}")
        (d / "tokens.csv").write_text("\n".join(lines) + "\n")
        os.chmod(d / "tokens.csv", 0o600)

    def _start_etcd(self) -> None:
        client = self._port("etcd")
        peer = self._port("etcd_peer")
        t0 = time.monotonic()
        self._spawn(
            "etcd",
            [
                str(self.bins.etcd),
                "--name=e2e",
                f"--data-dir={self.run_dir / 'etcd'}",
                f"--listen-client-urls=http://{HOST}:{client}",
                f"--advertise-client-urls=http://{HOST}:{client}",
                f"--listen-peer-urls=http://{HOST}:{peer}",
                f"--initial-advertise-peer-urls=http://{HOST}:{peer}",
                f"--initial-cluster=e2e=http://{HOST}:{peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._poll("etcd", lambda: _http_ok(f"http://{HOST}:{client}/health"), 60)
        self.timings["etcd"] = time.monotonic() - t0

    def _start_apiserver(self) -> None:
        port = self._port("apiserver")
        pki = self.run_dir / "pki"
        t0 = time.monotonic()
        self._spawn(
            "kube-apiserver",
            [
                str(self.bins.kube_apiserver),
                f"--etcd-servers=http://{HOST}:{self.ports['etcd']}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--anonymous-auth=false",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                # No "kubernetes" Service endpoints: they would advertise 127.0.0.1.
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                f"--cert-dir={self.run_dir / 'apiserver-certs'}",
                "--v=1",
            ],
        )
        self._poll("kube-apiserver /readyz", lambda: self._api_ok("/readyz"), 180)
        self.timings["apiserver"] = time.monotonic() - t0
        self.admin_kubeconfig = self._write_kubeconfig("admin", self.admin_token)

    def _start_controllers(self) -> None:
        pki = self.run_dir / "pki"
        kcm_kubeconfig = self._write_kubeconfig(
            "controller-manager", self._tokens["controller-manager"]
        )
        sched_kubeconfig = self._write_kubeconfig("scheduler", self._tokens["scheduler"])
        kcm_port, sched_port = self._port("controller_manager"), self._port("scheduler")
        t0 = time.monotonic()
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bins.kube_controller_manager),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--leader-elect=false",
                f"--bind-address={HOST}",
                f"--secure-port={kcm_port}",
                f"--cert-dir={self.run_dir / 'kcm-certs'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                # kwok heartbeats every 20-45 s; leave room on a loaded 2-core machine.
                "--node-monitor-grace-period=120s",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.bins.kube_scheduler),
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                "--leader-elect=false",
                f"--bind-address={HOST}",
                f"--secure-port={sched_port}",
                f"--cert-dir={self.run_dir / 'scheduler-certs'}",
                "--v=1",
            ],
        )
        self._poll(
            "kube-controller-manager /healthz",
            lambda: _https_ok(f"https://{HOST}:{kcm_port}/healthz"),
            120,
        )
        self._poll(
            "kube-scheduler /readyz", lambda: _https_ok(f"https://{HOST}:{sched_port}/readyz"), 120
        )
        self.timings["controllers"] = time.monotonic() - t0

    def _start_kwok(self) -> None:
        stages = []
        for name in KWOK_STAGES:
            stages.append((self.bins.kwok_stages / name).read_text())
        for path in sorted(OUR_STAGES.glob("*.yaml")):
            stages.append(path.read_text())
        config = self.run_dir / "kwok.yaml"
        config.write_text("\n---\n".join(s.strip() for s in stages) + "\n")
        port = self._port("kwok")
        t0 = time.monotonic()
        self._spawn(
            "kwok",
            [
                str(self.bins.kwok),
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--config={config}",
                "--manage-all-nodes=true",
                f"--server-address={HOST}:{port}",
                # Node and pod addresses are only ever written into API objects, never dialled;
                # they must not be loopback, which the EndpointSlice controller refuses (the
                # workload's nodes also bring their own InternalIP and podCIDR).
                "--node-ip=192.0.2.254",
                "--cidr=10.250.0.1/16",
                "--v=INFO",
            ],
        )
        self._poll("kwok /healthz", lambda: _http_ok(f"http://{HOST}:{port}/healthz"), 60)
        self.timings["kwok"] = time.monotonic() - t0

    def _apply_rbac_and_make_sa_kubeconfig(self) -> None:
        self.kubectl("apply", "-f", str(RBAC_MANIFEST))
        # A bound, expiring ServiceAccount token through the TokenRequest API.
        req = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400},
        }
        out = self._api(
            "POST",
            f"/api/v1/namespaces/{SA_NAMESPACE}/serviceaccounts/{SA_NAME}/token",
            req,
            retry_for=30,
        )
        token = out["status"]["token"]
        self.sa_kubeconfig = self._write_kubeconfig("daemonviz", token)

    def _wait_cluster_usable(self) -> None:
        """The controllers really work: the service-account controller made `default`."""
        t0 = time.monotonic()
        self._poll(
            "ServiceAccount default/default (controller manager working)",
            lambda: self._api_ok("/api/v1/namespaces/default/serviceaccounts/default"),
            120,
        )
        self.timings["controllers-working"] = time.monotonic() - t0

    # ------------------------------------------------------------------ helpers

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.ports['apiserver']}"

    def _write_kubeconfig(self, user: str, token: str) -> Path:
        ca = (self.run_dir / "pki" / "ca.crt").read_bytes()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": f"e2e-{user}", "context": {"cluster": "e2e", "user": user}}],
            "current-context": f"e2e-{user}",
        }
        path = self.run_dir / f"kubeconfig-{user}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        os.chmod(path, 0o600)
        return path

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, check: bool = True, input: str = ""
    ) -> subprocess.CompletedProcess:
        argv = [str(self.bins.kubectl), f"--kubeconfig={kubeconfig or self.admin_kubeconfig}"]
        proc = subprocess.run(
            [*argv, *args], capture_output=True, text=True, input=input or None, timeout=120
        )
        if check and proc.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.run_dir / "pki" / "ca.crt"))

    def _api(self, method: str, path: str, body: dict | None = None, retry_for: float = 0):
        deadline = time.monotonic() + retry_for
        while True:
            req = urllib.request.Request(
                self.server + path,
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={
                    "Authorization": f"Bearer {self.admin_token}",
                    "Content-Type": "application/json",
                },
            )
            try:
                with urllib.request.urlopen(req, context=self._ssl_context(), timeout=10) as r:
                    return json.loads(r.read() or b"{}")
            except (urllib.error.URLError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"{method} {path}: {exc}") from exc
                time.sleep(0.5)

    def _api_ok(self, path: str) -> bool:
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _poll(self, what: str, ok: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if ok():
                return
            time.sleep(0.25)
        raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}")


RUN_DIR_PREFIX = "daemonviz-e2e-"


def _sweep_stale_run_dirs() -> None:
    """Remove run directories left by a killed run (SIGKILL skips stop(); PDEATHSIG still
    ended its processes): those whose recorded processes are all gone."""
    for d in Path(tempfile.gettempdir()).glob(RUN_DIR_PREFIX + "*"):
        pids_file = d / "pids"
        try:
            pids = [int(line.split()[0]) for line in pids_file.read_text().splitlines()]
        except (OSError, ValueError, IndexError):
            continue
        if pids and not any(_pid_alive(pid) for pid in pids):
            shutil.rmtree(d, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _https_ok(url: str) -> bool:
    # The controller manager and scheduler serve self-signed certificates of their own.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=3) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _end_group(popen: subprocess.Popen, grace: float = 10.0) -> None:
    if popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(5)


_SIGTERM_PLANES: list[ControlPlane] = []


def _stop_on_sigterm(plane: ControlPlane) -> None:
    """SIGTERM (CI's or a user's `kill`) would skip atexit: stop the planes, then exit."""
    _SIGTERM_PLANES.append(plane)
    if len(_SIGTERM_PLANES) > 1:
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:
        return

    def handler(signum, frame):
        for p in _SIGTERM_PLANES:
            p.stop()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    with contextlib.suppress(ValueError):  # not the main thread: atexit + PDEATHSIG remain
        signal.signal(signal.SIGTERM, handler)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "up"):
        print("usage: python -m tests.e2e.controlplane.cluster build|up", file=sys.stderr)
        return 2
    bins = build()
    if argv[0] == "build":
        return 0
    plane = ControlPlane.create(bins)
    with plane:
        print(f"admin kubeconfig:     {plane.admin_kubeconfig}")
        print(f"daemonviz kubeconfig: {plane.sa_kubeconfig}")
        print("Ctrl-C stops everything.")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                plane.check_alive()
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
