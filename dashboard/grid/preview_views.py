"""The Preview page (docs/plan.md): paste or upload DaemonSet manifests or node patches and
see where the daemons would run. A plain form POST (with Django's CSRF token), so it works
without any script and under the strict Content-Security-Policy."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from dashboard.collect.registry import registry
from dashboard.coverage.plan_input import MAX_PLAN_BYTES, PATCH_VERBS, PlanError
from dashboard.grid import preview as plan_preview
from dashboard.models import Cluster

MAX_FIELD_CHARS = MAX_PLAN_BYTES  # the textarea's limit, checked again on the server


@login_required
def preview(request: HttpRequest, slug: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, slug=slug)
    collector = registry.get(slug)
    ctx: dict = {
        "cluster": cluster,
        "running": collector is not None,
        "text": "",
        "max_kib": MAX_PLAN_BYTES // 1024,
        "max_chars": MAX_FIELD_CHARS,
        "verbs": PATCH_VERBS,
    }
    status = 200
    if request.method == "POST" and collector is not None:
        text = request.POST.get("plan", "")
        ctx["text"] = text[:MAX_FIELD_CHARS]  # shown again, so nothing is lost
        try:
            text = plan_preview.read_text(text, request.FILES.get("file"))
            with collector.lock:
                records = plan_preview.cluster_records(collector)
            ctx["preview"] = plan_preview.preview(records, text)
        except PlanError as exc:
            ctx["error"] = str(exc)
            status = 400
    return render(request, "dashboard/preview.html", ctx, status=status)
