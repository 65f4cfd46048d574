"""`manage.py fakeapiserver`: serve a simulated cluster as a (read-only) Kubernetes API on
127.0.0.1, and write a kubeconfig for it, so kubectl and the dashboard's kube layer can be
pointed at it exactly as at a real cluster."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.collect import gcfreeze
from dashboard.simulator import Simulator
from dashboard.simulator.apiserver import FakeApiServer

if TYPE_CHECKING:  # imported where used, to report a missing simulator as a CommandError
    from dashboard.simulator import Simulator


class Command(BaseCommand):
    help = "Serve a simulated cluster over HTTP as a subset of the Kubernetes API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scenario", choices=["demo", "large"], default="demo")
        parser.add_argument("--nodes", type=int, default=None)
        parser.add_argument("--daemonsets", type=int, default=None)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--churn", type=float, default=None, help="events per second")
        parser.add_argument("--speed", type=float, default=1.0, help="simulated s per real s")
        parser.add_argument("--port", type=int, default=16443, help="0 picks a free port")
        parser.add_argument(
            "--kubeconfig",
            type=Path,
            default=Path(settings.BASE_DIR) / "var" / "fakeapiserver.kubeconfig",
        )
        parser.add_argument("--context", default="fake")
        parser.add_argument(
            "--token",
            default=None,
            help="require this bearer token (kubectl only sends it with --tls)",
        )
        parser.add_argument("--tls", action="store_true", help="serve https, self-signed")
        parser.add_argument("--bookmark-interval", type=float, default=5.0)
        parser.add_argument(
            "--no-watch-list",
            action="store_true",
            help="refuse WatchList streams (sendInitialEvents) with 422, as a kube-apiserver "
            "with its WatchList feature gate off does",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        sim = self._simulator(opts)
        # The built cluster is millions of long-lived dicts (2+ GB at 5,000 nodes): a full
        # cyclic-GC pass over them stalls every thread, watch streams included, for ~2 s
        # (bench/kube_bench.py saw one such pause as a 2 s event lag).
        gcfreeze.freeze_long_lived("building the simulated cluster")
        server = FakeApiServer(
            sim.store,
            port=opts["port"],
            token=opts["token"],
            bookmark_interval=opts["bookmark_interval"],
            tls=opts["tls"],
            watch_list=not opts["no_watch_list"],
        )
        try:
            server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on 127.0.0.1:{opts['port']}: {exc}") from exc
        sim.start(speed=opts["speed"])
        kubeconfig = server.write_kubeconfig(opts["kubeconfig"], context=opts["context"])
        self._announce(server, kubeconfig, opts)
        try:
            self._wait_for_interrupt()
        finally:
            sim.stop()
            server.stop()
            self.stdout.write(
                f"stopped; {len(server.non_get_requests)} non-GET request(s) were refused"
            )

    def _simulator(self, opts: dict[str, Any]) -> Simulator:
        try:
            return Simulator.from_scenario(
                opts["scenario"],
                seed=opts["seed"],
                nodes=opts["nodes"],
                daemonsets=opts["daemonsets"],
                churn=opts["churn"],
            )
        except ValueError as exc:  # e.g. sizes out of range
            raise CommandError(str(exc)) from exc

    def _announce(self, server: FakeApiServer, kubeconfig: Path, opts: dict[str, Any]) -> None:
        self.stdout.write(f"fake Kubernetes API server: {server.url}")
        self.stdout.write(f"kubeconfig: {kubeconfig}")
        self.stdout.write(f"  kubectl --kubeconfig {kubeconfig} get nodes,pods,ds -A")
        if opts["token"] and not opts["tls"]:
            self.stderr.write(
                "warning: kubectl never sends a token over plain http; add --tls for kubectl"
            )
        self.stdout.write("Ctrl-C to stop.")

    @staticmethod
    def _wait_for_interrupt() -> None:
        # SIGTERM (e.g. from a process manager) stops as cleanly as Ctrl-C does.
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
