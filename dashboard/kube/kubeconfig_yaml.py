"""Reading kubeconfig text that may be hostile: bounded YAML, then a check of its shape.

A kubeconfig comes from an admin's upload or a file on the server, and the kubernetes
client's loader trusts its shape: `clusters: [{name: c, cluster: "https://…"}]` (a string
where a mapping belongs) raised AttributeError deep in the loader, which the admin
answered with a 500. Every field the loader reads is checked here first, so any malformed
kubeconfig becomes one line saying which entry and which field is wrong (never a value: a
value may be a credential).

YAML itself is bounded (dashboard.coverage.bounded_yaml): aliases can make a few hundred
bytes expand into billions of nodes ("billion laughs"), and every walk over the result
(ours, the client loader's) would never end; the expanded size and the nesting are
measured before anything is built.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from dashboard.coverage.bounded_yaml import BoundedYamlError, load_bounded

MAX_BYTES = 1024 * 1024  # far above any real kubeconfig (hundreds of contexts)
MAX_NODES = 200_000  # YAML nodes after expanding aliases
MAX_DEPTH = 64  # a kubeconfig nests 6 or 7 levels deep


class KubeconfigShapeError(ValueError):
    """The text is not a usable kubeconfig; the message says why, without any value."""


def load_yaml(text: str) -> Any:
    """`text` parsed as YAML within the bounds above; KubeconfigShapeError otherwise."""
    if len(text) > MAX_BYTES:
        raise KubeconfigShapeError("larger than 1 MiB: not a kubeconfig")
    try:
        return load_bounded(text, max_nodes=MAX_NODES, max_depth=MAX_DEPTH)
    except BoundedYamlError as exc:
        raise KubeconfigShapeError(_yaml_message(exc)) from None


def _yaml_message(exc: BoundedYamlError) -> str:
    # Only the position of a syntax error: PyYAML's words quote the text, which may hold a
    # credential.
    if exc.problem == "syntax":
        return f"invalid YAML{exc.at}"
    if exc.problem == "value":
        return "invalid YAML (a value cannot be read)"
    if exc.problem == "too large":
        return f"{exc}: not a kubeconfig"
    return str(exc)


# --------------------------------------------------------------------------- shape

_STR, _BOOL, _B64, _STR_LIST = "a string", "true or false", "base64 text", "a list of strings"

# The fields of each entry that the client's loader reads, and what they must be.
_CLUSTER_FIELDS = {
    "server": _STR,
    "certificate-authority": _STR,
    "certificate-authority-data": _B64,
    "insecure-skip-tls-verify": _BOOL,
    "tls-server-name": _STR,
    "proxy-url": _STR,
    "disable-compression": _BOOL,
}
_CONTEXT_FIELDS = {"cluster": _STR, "user": _STR, "namespace": _STR}
_USER_FIELDS = {
    "token": _STR,
    "tokenFile": _STR,
    "username": _STR,
    "password": _STR,
    "client-certificate": _STR,
    "client-certificate-data": _B64,
    "client-key": _STR,
    "client-key-data": _B64,
}


def check_shape(config: Any, label: str) -> dict[str, Any]:
    """`config` if it has the shape of a kubeconfig, else KubeconfigShapeError naming the
    entry and field at fault."""
    if not isinstance(config, dict) or not isinstance(config.get("contexts"), list):
        raise KubeconfigShapeError(
            f"{label}: not a kubeconfig (expected a mapping with clusters, contexts and users)"
        )
    current = config.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigShapeError(f"{label}: current-context must be {_STR}")
    for section, body_key, fields in (
        ("clusters", "cluster", _CLUSTER_FIELDS),
        ("contexts", "context", _CONTEXT_FIELDS),
        ("users", "user", _USER_FIELDS),
    ):
        entries = config.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
        ):
            raise KubeconfigShapeError(f"{label}: malformed '{section}' (a list of named entries)")
        for entry in entries:
            where = f"{label}: {body_key} {entry['name']!r}"
            body = entry.get(body_key)
            if body is None and section == "users":
                continue  # an anonymous user
            if not isinstance(body, dict):
                raise KubeconfigShapeError(f"{where}: '{body_key}' must be a mapping")
            _check_fields(body, fields, where)
            if section == "users":
                _check_user_plugins(body, where)
    return config


def _check_fields(body: dict[Any, Any], fields: dict[str, str], where: str) -> None:
    for key, kind in fields.items():
        if key not in body or body[key] is None:
            continue
        value = body[key]
        ok = isinstance(value, bool) if kind == _BOOL else isinstance(value, str)
        if ok and kind == _B64:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                ok = False
        if not ok:
            raise KubeconfigShapeError(f"{where}: {key} must be {kind}")


def _check_user_plugins(body: dict[Any, Any], where: str) -> None:
    exec_ = body.get("exec")
    if exec_ is not None:
        if not isinstance(exec_, dict) or not isinstance(exec_.get("command"), str):
            raise KubeconfigShapeError(f"{where}: exec must be a mapping with a command")
        args = exec_.get("args")
        if args is not None and not (
            isinstance(args, list) and all(isinstance(a, str) for a in args)
        ):
            raise KubeconfigShapeError(f"{where}: exec args must be {_STR_LIST}")
        env = exec_.get("env")
        if env is not None and not (
            isinstance(env, list)
            and all(
                isinstance(e, dict)
                and isinstance(e.get("name"), str)
                and isinstance(e.get("value"), str)
                for e in env
            )
        ):
            raise KubeconfigShapeError(f"{where}: exec env must be a list of name/value pairs")
    provider = body.get("auth-provider")
    if provider is not None and not (
        isinstance(provider, dict)
        and isinstance(provider.get("name"), str)
        and isinstance(provider.get("config") or {}, dict)
    ):
        raise KubeconfigShapeError(f"{where}: auth-provider must be a mapping with a name")
