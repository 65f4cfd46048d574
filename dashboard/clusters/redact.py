"""Keeping credentials out of messages and logs.

The kube layer already builds its messages from error *types* and Status objects, never
from request data, so they carry no token or key. This module is the second line: it
knows which strings of a kubeconfig are secret and scrubs them from any text shown to a
person (form errors, test-connection reports, collector status), and it keeps wall
display tokens — which travel in URL paths — out of log records.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

from dashboard.kube.kubeconfig_yaml import KubeconfigShapeError, load_yaml

REDACTED = "[redacted]"
# Fields of a kubeconfig user entry that are not secret; every other string under `users`
# (token, password, client-key-data, auth-provider tokens, exec env values...) is.
_NOT_SECRET = {"apiVersion", "command", "interactiveMode", "installHint", "name", "username"}
_MIN_SECRET = 6  # shorter strings would scrub ordinary words


def kubeconfig_secrets(text: str) -> set[str]:
    """Every credential-like string in a kubeconfig's users (and its base64 decodings)."""
    try:
        config = load_yaml(text)  # bounded: an alias bomb must not hang the scrubbing
    except KubeconfigShapeError:
        return set()
    if not isinstance(config, dict):
        return set()
    found: set[str] = set()
    for user in config.get("users") or []:
        if isinstance(user, dict):
            _collect(user.get("user"), found)
    return found


def _collect(node: object, found: set[str], key: str = "") -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _collect(v, found, str(k))
    elif isinstance(node, list):
        for v in node:
            _collect(v, found, key)
    elif isinstance(node, str) and key not in _NOT_SECRET and len(node) >= _MIN_SECRET:
        found.add(node)
        try:
            decoded = base64.b64decode(node, validate=True).decode()
        except (binascii.Error, ValueError):
            return
        found.update(line for line in decoded.splitlines() if len(line) >= 16)


def scrub(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


_WALL_PATH = re.compile(r"(/wall/)[A-Za-z0-9_\-]{8,}")


def redact_wall_tokens(text: str) -> str:
    return _WALL_PATH.sub(r"\1" + REDACTED, text)


class RedactWallTokens(logging.Filter):
    """Rewrites records that mention a /wall/<token>/ or /ws/wall/<token>/ path.

    Installed on the loggers that log request paths (django.request logs every 4xx/5xx
    with the path; the servers log connections). A logger-level filter runs before the
    record reaches any handler, so every handler (and pytest's caplog) sees the redacted
    text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_wall_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter honours @sensitive_variables and @sensitive_post_parameters only
    when DEBUG is off: with DEBUG on, the debug page showed the frame locals of the
    kubeconfig parser (an uploaded kubeconfig's token, three times). Credentials must not
    depend on a debug switch, so the markers apply always.

    A frame is hidden when it, or any function that called it, is @sensitive_variables():
    the kube layer (which must not import Django) is covered by its callers in
    dashboard/clusters (Target.client, the form's methods)."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True
