from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: Django imports this module before the models are
        # loaded, and these modules need them (the app-registry rule, not a cycle).
        import sys

        from django.conf import settings

        # The interpreter hands its lock from a busy thread to a waiting one after this
        # long. The event loop gives the lock up at every socket read and write and must
        # win it back each time: beside one busy thread (a 5,000-node page render, a
        # snapshot's first decode, a collector's tick) it managed one write per 5 ms by
        # default, and a web worker's frames fell seconds behind (bench/RESULTS.md, the
        # convoy probe). At 1 ms the same loop keeps up.
        sys.setswitchinterval(settings.DAEMONVIZ_SWITCH_INTERVAL)

        from dashboard import signals  # noqa: F401 - connects the receivers
        from dashboard.auth import signals as auth_signals  # noqa: F401

        if settings.REDIS_URL and not settings.DAEMONVIZ_EMBEDDED_COLLECTOR:
            # Scale-out web worker: clusters come from the collectors' snapshots in Redis.
            from dashboard.collect.registry import registry
            from dashboard.collect.remote import SnapshotReader

            registry.fallback = SnapshotReader()
