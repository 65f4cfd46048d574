"""The password form, with a clear word when password sign-in is switched off."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


class LocalLoginForm(AuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        if not settings.DAEMONVIZ_LOCAL_LOGIN:
            return ValidationError(
                "Password sign-in is switched off; only a break-glass admin may use it.",
                code="invalid_login",
            )
        return super().get_invalid_login_error()
