from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

from dashboard import metrics, sparklines
from dashboard.auth import views as auth_pages
from dashboard.grid import preview_views, views
from dashboard.history import views as history_views
from dashboard.wall import views as wall_views

urlpatterns: list[URLPattern | URLResolver] = [
    # Sign-in and sign-out (templates/registration/). Only these auth views: password
    # reset would need outgoing mail; admins reset passwords (manage.py changepassword).
    path("accounts/login/", auth_pages.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_pages.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("", views.overview, name="overview"),
    path("overview/cards/", views.overview_cards, name="overview-cards"),
    path("clusters/<slug:slug>/", views.grid, name="grid"),
    path("clusters/<slug:slug>/grid/", views.grid_body, name="grid-body"),
    path("clusters/<slug:slug>/status/", views.grid_status, name="grid-status"),
    path("clusters/<slug:slug>/summary/", views.grid_summary, name="grid-summary"),
    path("clusters/<slug:slug>/cell/", views.cell, name="cell"),
    path("clusters/<slug:slug>/cell/log/", views.cell_log, name="cell-log"),
    path(
        "clusters/<slug:slug>/daemonsets/<str:namespace>/<str:name>/",
        views.daemonset,
        name="daemonset",
    ),
    path("clusters/<slug:slug>/nodes/<str:name>/", views.node, name="node"),
    # What-if placement (dashboard/grid/preview_views.py): computed, never sent anywhere.
    path("clusters/<slug:slug>/preview/", preview_views.preview, name="preview"),
    # The current view as a file (dashboard/grid/export.py): the grid's filters in the query.
    path("clusters/<slug:slug>/export.<str:fmt>", views.export, name="export"),
    path(
        "clusters/<slug:slug>/daemonsets/<str:namespace>/<str:name>/export.<str:fmt>",
        views.daemonset_export,
        name="daemonset-export",
    ),
    # Coverage history (dashboard/history/views.py).
    path("clusters/<slug:slug>/history/", history_views.cluster_history, name="history"),
    path(
        "clusters/<slug:slug>/daemonsets/<str:namespace>/<str:name>/history/",
        history_views.daemonset_history,
        name="daemonset-history",
    ),
    path(
        "clusters/<slug:slug>/nodes/<str:name>/history/",
        history_views.node_history,
        name="node-history",
    ),
    # Probes and Prometheus (dashboard/metrics.py): no sign-in; /metrics may want a token.
    path("healthz", metrics.healthz, name="healthz"),
    path("readyz", metrics.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # Token access instead of sign-in; see dashboard/access.py.
    path("wall/<str:token>/", wall_views.wall_page, name="wall"),
    path("wall/<str:token>/sparklines/", sparklines.wall_sparklines, name="wall-sparklines"),
]

# OpenID Connect (dashboard/auth/): /oidc/authenticate/ and /oidc/callback/.
if settings.DAEMONVIZ_OIDC_ENABLED:
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
