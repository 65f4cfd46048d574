from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: Django imports this module before the models are
        # loaded, and these modules need them (the app-registry rule, not a cycle).
        from django.conf import settings

        from dashboard import signals  # noqa: F401 - connects the receivers
        from dashboard.auth import signals as auth_signals  # noqa: F401

        if settings.REDIS_URL and not settings.DAEMONVIZ_EMBEDDED_COLLECTOR:
            # Scale-out web worker: clusters come from the collectors' snapshots in Redis.
            from dashboard.collect.registry import registry
            from dashboard.collect.remote import SnapshotReader

            registry.fallback = SnapshotReader()
