"""The admin panel: clusters and wall displays. Thin: forms validate (dashboard/clusters/forms.py),
checks probe (dashboard/clusters/connection.py), tokens live in dashboard/access.py, and
saves reach the running collectors through signals (dashboard/signals.py).

Only staff users get here (Django's admin checks `is_staff`); viewers are plain users.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from dashboard import access
from dashboard.clusters import connection as connection_test
from dashboard.clusters.connection import CheckRateLimited, Report
from dashboard.clusters.forms import ClusterAdminForm, contexts_of, read_upload
from dashboard.clusters.redact import kubeconfig_secrets, scrub
from dashboard.collect.registry import registry
from dashboard.collect.status import RuntimeStatus
from dashboard.kube.clients import KubeconfigError
from dashboard.models import Cluster, WallDisplay

admin.site.site_header = "daemonviz admin"
admin.site.site_title = "daemonviz admin"
admin.site.index_title = "Clusters, wall displays and users"
admin.site.site_url = "/"


def _sign_in(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """One sign-in page for the whole app: the admin's login sends to it. A signed-in viewer
    who tries the admin lands there too, told that the account has no access."""
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("login"))


# mypy refuses any assignment to a method; this replaces it on the one site instance, with
# the bound method's signature.
admin.site.login = _sign_in  # type: ignore[method-assign]

BADGE_POLL_SECONDS = 5


def runtime_status(cluster: Cluster) -> RuntimeStatus | None:
    """The running collector's status in this process, or None."""
    collector = registry.get(cluster.slug)
    return collector.runtime_status() if collector is not None and cluster.enabled else None


def _badge(cluster: Cluster) -> str:
    return render_to_string(
        "admin/dashboard/cluster/_badge.html",
        {
            "cluster": cluster,
            "rt": runtime_status(cluster),
            "poll": BADGE_POLL_SECONDS,
            "url": reverse("admin:dashboard_cluster_badge", args=[cluster.pk]),
        },
    )


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterAdminForm
    change_form_template = "admin/dashboard/cluster/change_form.html"
    list_display = ["name", "slug", "source", "status", "enabled", "display_order"]
    list_filter = ["enabled", "source"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["runtime"]
    actions = ["test_connection", "enable", "disable"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "enabled", "display_order", "runtime"]}),
        ("Source", {"fields": ["source"]}),
        (
            "Kubeconfig",
            {
                "classes": ["src-kubeconfig"],
                "fields": [
                    "kubeconfig_path",
                    "kubeconfig_upload",
                    "context",
                    "skip_connection_check",
                ],
            },
        ),
        (
            "Simulated cluster",
            {
                "classes": ["src-simulated"],
                "fields": ["scenario", "sim_nodes", "sim_daemonsets", "sim_seed"],
            },
        ),
        (
            "What to show",
            {
                "fields": [
                    "namespaces_include",
                    "namespaces_exclude",
                    "daemonset_selector",
                    "group_by_label",
                ]
            },
        ),
        ("Logs of crash loops (opt-in)", {"fields": ["allow_logs"]}),
    ]

    class Media:
        js = ["js/admin-cluster.js"]

    # ------------------------------------------------------------------ columns

    @admin.display(description="status")
    def status(self, cluster: Cluster) -> str:
        # Live: each badge re-fetches itself every few seconds (htmx, see base_site.html).
        return mark_safe(_badge(cluster))  # rendered by a template: escaped there

    @admin.display(description="runtime status")
    def runtime(self, cluster: Cluster) -> str:
        if cluster.pk is None:
            return "—"
        return mark_safe(
            render_to_string(
                "admin/dashboard/cluster/_runtime.html",
                {"cluster": cluster, "rt": runtime_status(cluster)},
            )
        )

    # ------------------------------------------------------------------ actions

    @admin.action(description="Test connection of the selected clusters")
    def test_connection(
        self, request: HttpRequest, queryset: QuerySet[Cluster]
    ) -> HttpResponse | None:
        clusters = list(queryset)
        if not self._within_rate(request, clusters):
            return None
        return self._report_page(request, connection_test.test_connections(clusters))

    @admin.action(description="Enable the selected clusters")
    def enable(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected clusters")
    def disable(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[Cluster], enabled: bool
    ) -> None:
        # Saved one by one (not queryset.update) so the signals reach the collectors.
        for cluster in queryset:
            if cluster.enabled != enabled:
                cluster.enabled = enabled
                cluster.save(update_fields=["enabled"])
        word = "enabled" if enabled else "disabled"
        self.message_user(request, f"{queryset.count()} cluster(s) {word}.", messages.SUCCESS)

    # ------------------------------------------------------------------ extra views

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="dashboard_cluster_test",
            ),
            path(
                "<int:pk>/badge/",
                self.admin_site.admin_view(self.badge_view),
                name="dashboard_cluster_badge",
            ),
            path(
                "contexts/",
                self.admin_site.admin_view(self.contexts_view),
                name="dashboard_cluster_contexts",
            ),
        ]
        return own + super().get_urls()

    def _report_page(self, request: HttpRequest, reports: list[Report]) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Test connection",
            "reports": reports,
        }
        return TemplateResponse(request, "admin/dashboard/cluster/test_connection.html", context)

    def test_connection_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        cluster = get_object_or_404(Cluster, pk=pk)
        if not self.has_view_permission(request, cluster):
            raise PermissionDenied
        if request.method != "POST":
            # Outbound requests only on an explicit (CSRF-checked) POST, not on a link.
            return redirect("admin:dashboard_cluster_change", pk)
        if not self._within_rate(request, [cluster]):
            return redirect("admin:dashboard_cluster_change", pk)
        return self._report_page(request, [connection_test.test_connection(cluster)])

    def _within_rate(self, request: HttpRequest, clusters: list[Cluster]) -> bool:
        """Count the real clusters about to be tested against the admin's rate, or say
        (as a message on the next page) that the limit is reached."""
        real = sum(c.source != Cluster.Source.SIMULATED for c in clusters)
        try:
            connection_test.rate_limit.take(f"user:{request.user.pk}", real)
        except CheckRateLimited as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return False
        return True

    def badge_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        cluster = get_object_or_404(Cluster, pk=pk)
        if not self.has_view_permission(request, cluster):
            raise PermissionDenied
        return HttpResponse(_badge(cluster))

    def contexts_view(self, request: HttpRequest) -> JsonResponse:
        """The contexts of a kubeconfig path or upload, for the form's context select."""
        if not self.has_add_permission(request) and not self.has_change_permission(request):
            raise PermissionDenied
        return _contexts_response(request)


@require_POST
@sensitive_variables()
def _contexts_response(request: HttpRequest) -> JsonResponse:
    secrets: set[str] = set()
    try:
        upload = request.FILES.get("kubeconfig_upload")
        if upload:
            content = read_upload(upload)
            secrets = kubeconfig_secrets(content)
            names, current = contexts_of(content=content)
        else:
            path_ = request.POST.get("kubeconfig_path", "").strip()
            if not path_:
                return JsonResponse({"contexts": [], "current": None, "error": ""})
            names, current = contexts_of(path=path_)
    except KubeconfigError as exc:
        return JsonResponse({"contexts": [], "current": None, "error": scrub(str(exc), secrets)})
    except Exception as exc:  # noqa: BLE001 - ValidationError from read_upload
        messages_ = getattr(exc, "messages", None) or ["cannot read the kubeconfig"]
        return JsonResponse({"contexts": [], "current": None, "error": messages_[0]})
    return JsonResponse({"contexts": names, "current": current, "error": ""})


# --------------------------------------------------------------------------- wall displays


@admin.register(WallDisplay)
class WallDisplayAdmin(admin.ModelAdmin):
    change_form_template = "admin/dashboard/walldisplay/change_form.html"
    list_display = ["name", "cluster_names", "theme", "rotation_seconds", "animations", "token"]
    filter_horizontal = ["clusters"]
    fields = ["name", "clusters", "rotation_seconds", "animations", "theme", "token"]
    readonly_fields = ["token"]
    actions = ["rotate_tokens", "revoke_tokens"]

    @admin.display(description="clusters")
    def cluster_names(self, wall: WallDisplay) -> str:
        return ", ".join(c.name for c in wall.clusters.all()) or "—"

    @admin.display(description="URL token")
    def token(self, wall: WallDisplay) -> str:
        if wall.pk is None:
            return "created when you save; shown once"
        if not wall.active:
            return "revoked — rotate to issue a new URL"
        when = wall.token_created_at.strftime("%Y-%m-%d %H:%M UTC") if wall.token_created_at else ""
        return f"active ({wall.token_hint}…, issued {when})"

    def save_model(self, request: HttpRequest, obj: WallDisplay, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            obj._new_token = access.issue_token(obj)  # shown once by response_add

    def response_add(
        self, request: HttpRequest, obj: WallDisplay, post_url_continue: str | None = None
    ) -> HttpResponse:
        token = getattr(obj, "_new_token", None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        return self._token_page(request, [(obj, token)])

    def _token_page(
        self, request: HttpRequest, issued: list[tuple[WallDisplay, str]]
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Wall display URL",
            "issued": [
                (wall, request.build_absolute_uri(reverse("wall", args=[token])))
                for wall, token in issued
            ],
        }
        response = TemplateResponse(request, "admin/dashboard/walldisplay/token.html", context)
        response["Cache-Control"] = "no-store"  # the only copy of the token: not cached
        return response

    @admin.action(description="Rotate the URL token (the old URL stops working)")
    def rotate_tokens(
        self, request: HttpRequest, queryset: QuerySet[WallDisplay]
    ) -> TemplateResponse:
        return self._token_page(request, [(w, access.issue_token(w)) for w in queryset])

    @admin.action(description="Revoke the URL token (open screens go blank)")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[WallDisplay]) -> None:
        for wall in queryset:
            access.revoke(wall)
        self.message_user(request, f"Revoked {queryset.count()} wall URL(s).", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/rotate/",
                self.admin_site.admin_view(self.rotate_view),
                name="dashboard_walldisplay_rotate",
            ),
            path(
                "<int:pk>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="dashboard_walldisplay_revoke",
            ),
        ]
        return own + super().get_urls()

    def _post_for_change(self, request: HttpRequest, pk: int) -> WallDisplay:
        wall = get_object_or_404(WallDisplay, pk=pk)
        if request.method != "POST" or not self.has_change_permission(request, wall):
            raise PermissionDenied
        return wall

    def rotate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        wall = self._post_for_change(request, pk)
        return self._token_page(request, [(wall, access.issue_token(wall))])

    def revoke_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        wall = self._post_for_change(request, pk)
        access.revoke(wall)
        self.message_user(request, f"Revoked the URL of {wall.name}.", messages.SUCCESS)
        return redirect("admin:dashboard_walldisplay_change", pk)
