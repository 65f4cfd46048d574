"""The OpenID Connect backend: mozilla-django-oidc's, with daemonviz's choices.

mozilla-django-oidc runs the authorization-code flow (state, nonce and PKCE kept in the
session, the code exchanged at the token endpoint) and checks the ID token's signature
against the provider's JWKS. On top of that, here:

* the endpoints come from the issuer's discovery document (discovery.py);
* the ID token must also name this client as its audience and the configured issuer, and
  carry exp/iat/sub — PyJWT checks them (the library leaves the audience unchecked);
* userinfo must be about the ID token's subject (OpenID Connect Core 5.3.4);
* the user is found by the configured user-name claim, and only among accounts this
  backend created (they have no usable password): an IdP name can never take over a
  local account such as the break-glass admin;
* roles are set from the groups claim at every sign-in (roles.py).
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from dashboard.auth import discovery, roles

log = logging.getLogger(__name__)

# Clock skew tolerated on exp/iat between the provider and this server, in seconds.
LEEWAY_SECONDS = 30


class OIDCBackend(OIDCAuthenticationBackend):
    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        return discovery.setting(attr, *args)

    def get_payload_data(self, token: bytes | str, key: Any) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=discovery.document()["issuer"],
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from None

    def get_userinfo(self, access_token: str, id_token: str, payload: dict) -> dict[str, Any]:
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo is about another subject than the ID token")
        # Claims from both: some providers put groups in the ID token only.
        return {**payload, **userinfo}

    def _username(self, claims: dict[str, Any]) -> str | None:
        value = claims.get(settings.DAEMONVIZ_OIDC_USERNAME_CLAIM)
        if isinstance(value, str) and 0 < len(value) <= 150:
            return value
        return None

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if self._username(claims) is None:
            log.warning(
                "OIDC sign-in refused: no usable %r claim", settings.DAEMONVIZ_OIDC_USERNAME_CLAIM
            )
            return False
        return True

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        return f"user name {self._username(claims)!r}"

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet:
        users = get_user_model().objects.filter(username=self._username(claims))
        for user in users:
            if user.has_usable_password():
                raise SuspiciousOperation(
                    f"{user.username!r} is a local account; it cannot sign in through OIDC"
                )
        return users

    def create_user(self, claims: dict[str, Any]) -> Any:
        username = self._username(claims) or ""  # verify_claims made sure it is there
        user = get_user_model()(username=username, email=claims.get("email") or "")
        user.set_unusable_password()
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        groups = roles.groups_from(claims.get(settings.DAEMONVIZ_OIDC_GROUPS_CLAIM))
        role = roles.role_for(groups)
        roles.apply_role(user, role)
        user.save()
        if role is None:
            # The callback view shows "no access" instead of a generic failure.
            self.request.daemonviz_no_access = user.username
            log.info("OIDC sign-in of %r refused: in no admin or viewer group", user.username)
        return user
