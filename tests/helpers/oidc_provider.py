"""A real OpenID Connect provider for the sign-in tests: panva's oidc-provider (OpenID
Certified), run by node from tests/oidc_provider/ on a free 127.0.0.1 port.

`make oidc-deps` installs it (`npm ci` from the lockfile). The test side makes the
provider's RSA signing key, so it can also sign tokens of its own with the very key the
provider publishes in its JWKS (expired ones, ones for another audience...), and writes
the accounts file the provider re-reads at every sign-in (groups can change between two).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers.ports import free_port
from tests.helpers.processes import serving_process

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "tests" / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "daemonviz", "daemonviz-test-client-secret"
KID = "daemonviz-test-key"


@dataclass
class Provider:
    issuer: str
    private_key: rsa.RSAPrivateKey
    accounts_file: Path

    def set_accounts(self, accounts: dict[str, list[str]]) -> None:
        """`{"alice": ["dv-viewers"], ...}`: who may sign in (any password) and their groups."""
        data = {name: {"groups": groups} for name, groups in accounts.items()}
        self.accounts_file.write_text(json.dumps(data))

    def sign(
        self, claims: dict[str, Any], key: Any = None, kid: str = KID, alg: str = "RS256"
    ) -> str:
        return jwt.encode(claims, key or self.private_key, algorithm=alg, headers={"kid": kid})


def provider_available() -> bool:
    return (
        shutil.which("node") is not None
        and (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir()
    )


@contextmanager
def running_provider(
    tmp: Path, redirect_base: str, accounts: dict[str, list[str]], port: int | None = None
) -> Iterator[Provider]:
    """Start the provider; `redirect_base` is the dashboard's URL (its callback and
    post-sign-out pages are registered for the client)."""
    if not provider_available():
        pytest.skip("oidc-provider is not installed (make oidc-deps runs npm ci)")
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    # PyJWT marks a private JWK key_ops=["sign"]; the provider also verifies with it
    # (the id_token_hint of a sign-out), so no key_ops.
    jwk.pop("key_ops", None)
    jwk.update(kid=KID, use="sig", alg="RS256")
    provider = Provider(issuer, key, tmp / "oidc-accounts.json")
    provider.set_accounts(accounts)
    config = {
        "issuer": issuer,
        "port": port,
        "accounts_file": str(provider.accounts_file),
        "jwks": {"keys": [jwk]},
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_base + "/oidc/callback/"],
                "post_logout_redirect_uris": [redirect_base + "/accounts/login/"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
        ],
    }
    config_file = tmp / "oidc-provider.json"
    config_file.write_text(json.dumps(config))
    with serving_process(
        ["node", "provider.mjs", str(config_file)],
        ready_url=issuer + "/.well-known/openid-configuration",
        log_path=tmp / "oidc-provider.log",
        what="oidc-provider",
        cwd=PROVIDER_DIR,
    ):
        yield provider
