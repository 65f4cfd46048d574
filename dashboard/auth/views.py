"""Sign-in and sign-out pages around Django's and mozilla-django-oidc's views."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from dashboard.auth import discovery

log = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    """The password form, and "Sign in with <provider>" when OIDC is configured. With local
    sign-in off, the form is shown only on ?local=1 (for the break-glass admin)."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        local_login = settings.DAEMONVIZ_LOCAL_LOGIN
        context.update(
            oidc_enabled=settings.DAEMONVIZ_OIDC_ENABLED,
            oidc_provider_name=settings.DAEMONVIZ_OIDC_PROVIDER_NAME,
            oidc_failed="oidc_failed" in self.request.GET,
            show_password_form=local_login
            or "local" in self.request.GET
            or self.request.method == "POST",
            local_login=local_login,
        )
        return context


class OIDCAuthenticateView(OIDCAuthenticationRequestView):
    """Redirects to the provider's authorization endpoint (state, nonce, PKCE)."""

    get_settings = staticmethod(discovery.setting)


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(discovery.setting)

    @property
    def failure_url(self) -> str:
        return reverse("login") + "?oidc_failed=1"

    def login_failure(self) -> HttpResponse:
        if getattr(self.request, "daemonviz_no_access", None):
            return no_access(self.request)
        return super().login_failure()


def no_access(request: HttpRequest) -> HttpResponse:
    """A signed-in identity in no admin or viewer group: told so, shown nothing else."""
    return render(
        request,
        "registration/no_access.html",
        {"who": getattr(request, "daemonviz_no_access", "")},
        status=403,
    )


class LogoutView(auth_views.LogoutView):
    """Ends the Django session (its websockets close: dashboard/auth/signals.py), then, for
    an OIDC session whose provider offers an end-session endpoint, goes there to end the
    provider's session too, coming back to the sign-in page."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        id_token = request.session.get("oidc_id_token")
        response = super().post(request, *args, **kwargs)
        endpoint = discovery.end_session_endpoint() if id_token else None
        if not endpoint:
            return response
        query = urlencode(
            {
                "id_token_hint": id_token,
                "client_id": discovery.setting("OIDC_RP_CLIENT_ID"),
                "post_logout_redirect_uri": request.build_absolute_uri(reverse("login")),
            }
        )
        return HttpResponseRedirect(f"{endpoint}?{query}")
