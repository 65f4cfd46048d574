from django.urls import include, path

from . import views

urlpatterns = [
    # Django's LoginView/LogoutView with templates/registration/login.html.
    path("accounts/", include("django.contrib.auth.urls")),
    path("", views.overview, name="overview"),
    path("overview/cards/", views.overview_cards, name="overview-cards"),
    path("clusters/<slug:slug>/", views.grid, name="grid"),
    path("clusters/<slug:slug>/grid/", views.grid_body, name="grid-body"),
    path("clusters/<slug:slug>/status/", views.grid_status, name="grid-status"),
    path("clusters/<slug:slug>/cell/", views.cell, name="cell"),
    path(
        "clusters/<slug:slug>/daemonsets/<str:namespace>/<str:name>/",
        views.daemonset,
        name="daemonset",
    ),
    path("clusters/<slug:slug>/nodes/<str:name>/", views.node, name="node"),
]
