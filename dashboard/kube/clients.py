"""One `ApiClient` per cluster, from a kubeconfig file, uploaded kubeconfig content, or the
pod's service account.

Never touches the client's global default `Configuration` (`load_kube_config` would): each
cluster gets its own fresh Configuration, so several clusters coexist in one process.

Errors become `KubeconfigError` with one line that says what is wrong and where. Messages
name files, contexts, clusters and users, never token, key or password values.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.dateutil import parse_rfc3339
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)
from kubernetes.config.kube_config import FileOrData, KubeConfigLoader
from urllib3.util.retry import Retry

from dashboard.kube.kubeconfig_yaml import MAX_BYTES, KubeconfigShapeError, check_shape, load_yaml

USER_AGENT = "daemonviz (read-only)"
EXEC_TIMEOUT_SECONDS = 30.0


class KubeconfigError(Exception):
    """A kubeconfig (or in-cluster setup) that cannot produce a working client."""


class Contexts(NamedTuple):
    names: list[str]
    current: str | None


# --------------------------------------------------------------------------- public API


def client_from_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> ApiClient:
    """A client for `context` (default: the file's current-context) of the kubeconfig at `path`.

    Relative certificate, key and exec-command paths resolve against the file's directory,
    as kubectl does.
    """
    config = _read_kubeconfig_file(path)
    return _build(config, context, base_dir=str(Path(path).expanduser().resolve().parent))


def client_from_kubeconfigs(paths: list[str], context: str | None = None) -> ApiClient:
    """A client from several kubeconfig files merged as kubectl merges `$KUBECONFIG`: the
    first file to define a cluster, user or context name wins, and the current-context is
    the first file's that sets one. Missing files are skipped (kubectl does too), unless
    none exists. Relative paths inside a file resolve against that file's directory."""
    existing = [p for p in paths if p and Path(p).expanduser().is_file()]
    if not existing:
        shown = ", ".join(paths) or "none"
        raise KubeconfigError(f"no kubeconfig found (looked for: {shown})")
    if len(existing) == 1:
        return client_from_kubeconfig(existing[0], context)
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    for path in existing:
        config = _read_kubeconfig_file(path)
        base = Path(path).expanduser().resolve().parent
        for section in ("clusters", "users", "contexts"):
            seen = {e["name"] for e in merged[section]}
            for entry in config.get(section) or []:
                if entry["name"] not in seen:
                    merged[section].append(_absolute_paths(section, entry, base))
                    seen.add(entry["name"])
        if not merged.get("current-context") and config.get("current-context"):
            merged["current-context"] = config["current-context"]
    return _build(merged, context, base_dir=None)


def _absolute_paths(section: str, entry: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of a cluster or user entry with its file references made absolute."""
    key = {"clusters": "cluster", "users": "user"}.get(section)
    if key is None:
        return entry
    body = dict(entry.get(key) or {})
    for sec, name, _ in _FILE_KEYS:
        if sec == key and isinstance(body.get(name), str):
            body[name] = str(base / os.path.expanduser(body[name]))
    return {**entry, key: body}


def client_from_kubeconfig_content(
    content: str, context: str | None = None, *, allow_exec: bool = False
) -> ApiClient:
    """A client from kubeconfig text (an uploaded file).

    Exec credential plugins run a command on *this* host, so an uploaded kubeconfig may use
    one only when the caller says so (`allow_exec=True`, e.g. an administrator's upload).
    """
    config = _parse_kubeconfig(content, "uploaded kubeconfig")
    return _build(config, context, base_dir=None, allow_exec=allow_exec)


def client_in_cluster(
    token_path: str = SERVICE_TOKEN_FILENAME,
    ca_path: str = SERVICE_CERT_FILENAME,
    environ: Mapping[str, str] | None = None,
) -> ApiClient:
    """A client authenticated as the pod's service account.

    The loader re-reads the (projected, expiring) token file at most once a minute.
    """
    configuration = Configuration()
    try:
        InClusterConfigLoader(
            token_filename=token_path,
            cert_filename=ca_path,
            environ=os.environ if environ is None else environ,
        ).load_and_set(configuration)
    except ConfigException as exc:
        raise KubeconfigError(f"in-cluster configuration: {exc} (not running in a pod?)") from None
    _check_tls_files(configuration, "in-cluster", "service account")
    return _api_client(configuration)


def list_contexts(path_or_content: str | os.PathLike[str]) -> Contexts:
    """The context names of a kubeconfig file (or kubeconfig text) and its current-context."""
    if isinstance(path_or_content, str) and "\n" in path_or_content:
        config = _parse_kubeconfig(path_or_content, "uploaded kubeconfig")
    else:
        config = _read_kubeconfig_file(path_or_content)
    names = [c["name"] for c in config["contexts"]]
    current = config.get("current-context") or None
    return Contexts(names, current if current in names else None)


# --------------------------------------------------------------------------- reading


def _read_kubeconfig_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path).expanduser()
    try:
        if p.stat().st_size > MAX_BYTES:
            raise KubeconfigError(f"kubeconfig {p}: larger than 1 MiB, not a kubeconfig")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KubeconfigError(f"kubeconfig {p}: file not found") from None
    except IsADirectoryError:
        raise KubeconfigError(f"kubeconfig {p}: is a directory, not a file") from None
    except PermissionError:
        raise KubeconfigError(f"kubeconfig {p}: permission denied") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeconfigError(f"kubeconfig {p}: unreadable ({type(exc).__name__})") from None
    return _parse_kubeconfig(text, f"kubeconfig {p}")


def _parse_kubeconfig(text: str, label: str) -> dict[str, Any]:
    # Bounded YAML and a checked shape (kubeconfig_yaml.py): the client's loader trusts
    # both, and a hostile or mangled file must give a message, not an exception.
    try:
        return check_shape(load_yaml(text), label)
    except KubeconfigShapeError as exc:
        message = str(exc)
        raise KubeconfigError(
            message if message.startswith(label) else f"{label}: {message}"
        ) from None


def _named(config: dict[str, Any], section: str, name: str) -> dict[str, Any] | None:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return entry
    return None


# --------------------------------------------------------------------------- building


def _build(
    config: dict[str, Any], context: str | None, base_dir: str | None, allow_exec: bool = True
) -> ApiClient:
    names = [c["name"] for c in config["contexts"]]
    known = ", ".join(names) or "none"
    name = context or config.get("current-context")
    if not name:
        raise KubeconfigError(f"no context given and no current-context set (contexts: {known})")
    ctx = _named(config, "contexts", name)
    if ctx is None:
        raise KubeconfigError(f"unknown context {name!r} (known contexts: {known})")
    ctx_body = ctx.get("context") or {}
    cluster_name, user_name = ctx_body.get("cluster"), ctx_body.get("user")
    cluster = _named(config, "clusters", cluster_name or "")
    if cluster is None or not (cluster.get("cluster") or {}).get("server"):
        raise KubeconfigError(
            f"context {name!r}: cluster {cluster_name!r} is missing or has no server address"
        )
    user = _named(config, "users", user_name) if user_name else None
    if user_name and user is None:
        raise KubeconfigError(f"context {name!r}: user {user_name!r} is not defined")
    if user and "exec" in (user.get("user") or {}) and not allow_exec:
        command = (user["user"]["exec"] or {}).get("command", "?")
        raise KubeconfigError(
            f"user {user_name!r} authenticates with an exec plugin ({command!r}); exec plugins "
            "are disabled for uploaded kubeconfigs"
        )
    _check_referenced_files(cluster["cluster"], (user or {}).get("user") or {}, base_dir, name)

    configuration = Configuration()
    try:
        loader = _NonInteractiveLoader(
            config_dict=config, active_context=name, config_base_path=base_dir
        )
        loader.load_and_set(configuration)
    except KubeconfigError:
        raise
    except ConfigException as exc:
        raise KubeconfigError(f"context {name!r}: {_first_line(str(exc))}") from None
    except Exception as exc:
        # The shape was checked, so this is a field the check does not know. Name only
        # the exception's type: its text may quote a value (a credential).
        raise KubeconfigError(
            f"context {name!r}: malformed kubeconfig ({type(exc).__name__})"
        ) from None
    _check_tls_files(configuration, cluster_name or "", user_name or "")
    return _api_client(configuration)


# urllib3's default Retry(3) would sleep out a 429's Retry-After (and retry 5xx answers)
# inside the request, invisibly and deaf to stop(). Status answers are the reflector's to
# handle (it shows them and backs off); urllib3 keeps only a quick retry of connection
# hiccups such as a pooled keep-alive connection the server had closed.
TRANSPORT_RETRIES = Retry(
    total=2, connect=1, read=1, status=0, other=0, respect_retry_after_header=False
)


# One long-lived connection per watch stream (a dozen resources and event streams), plus
# the collector's and the pages' short requests. The client's default pool is 5 per CPU (10
# on a 2-core machine): fewer than the watches, so connections were opened and thrown away.
CONNECTION_POOL_SIZE = 32


def _api_client(configuration: Configuration) -> ApiClient:
    configuration.retries = TRANSPORT_RETRIES
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    client = ApiClient(configuration=configuration)
    client.user_agent = USER_AGENT
    return client


_FILE_KEYS = (
    ("cluster", "certificate-authority", "certificate-authority file"),
    ("user", "client-certificate", "client certificate file"),
    ("user", "client-key", "client key file"),
    ("user", "tokenFile", "token file"),
)


def _check_referenced_files(
    cluster: dict[str, Any], user: dict[str, Any], base_dir: str | None, context: str
) -> None:
    """Name a missing file precisely (the loader's message loses which one it was)."""
    sections = {"cluster": cluster, "user": user}
    for section, key, what in _FILE_KEYS:
        body = sections[section]
        data_key = "token" if key == "tokenFile" else f"{key}-data"
        if key in body and not body.get(data_key):
            path = Path(base_dir or ".", os.path.expanduser(str(body[key])))
            if not path.is_file():
                raise KubeconfigError(f"context {context!r}: {what} not found: {path}")


def _check_tls_files(configuration: Configuration, cluster: str, user: str) -> None:
    """Load CA and client certificate now, so a bad one is a clear error here rather than
    an obscure handshake failure on every request later."""
    if configuration.ssl_ca_cert:
        try:
            ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        except (ssl.SSLError, OSError, ValueError):
            raise KubeconfigError(
                f"cluster {cluster!r}: certificate-authority is not a valid PEM CA certificate"
            ) from None
    if configuration.cert_file:
        try:
            ssl.create_default_context().load_cert_chain(
                configuration.cert_file, configuration.key_file or None
            )
        except (ssl.SSLError, OSError, ValueError):
            raise KubeconfigError(
                f"user {user!r}: client certificate/key is not valid PEM or they do not match"
            ) from None


class _NonInteractiveLoader(KubeConfigLoader):
    """The stock loader, with exec credential plugins run non-interactively and loudly.

    The library's ExecProvider decides "interactive" from `sys.stdout.isatty()` (true when
    the dev server runs in a terminal: the plugin could then prompt and block a reflector
    thread forever) and swallows a plugin failure into `logging.error`, so an expired SSO
    login would surface only as a baffling 401. Here the plugin always gets
    `interactive: false`, no stdin, a timeout, and its failure is a `KubeconfigError`.
    """

    def _load_from_exec_plugin(self) -> bool | None:
        # Only called from _load_authentication, after it returned early without a user;
        # set_active_context always sets the cluster.
        assert self._user is not None and self._cluster is not None
        if "exec" not in self._user:
            return None
        exec_config = self._user["exec"].value
        base = self._get_base_path(self._cluster.path) or None
        cluster = self._cluster.value if exec_config.get("provideClusterInfo") else None
        status = run_exec_plugin(exec_config, base, cluster)
        if "token" in status:
            self.token = f"Bearer {status['token']}"
        elif "clientCertificateData" in status and "clientKeyData" in status:
            for attr, key in (
                ("cert_file", "clientCertificateData"),
                ("key_file", "clientKeyData"),
            ):
                setattr(
                    self,
                    attr,
                    FileOrData(
                        status,
                        None,
                        data_key_name=key,
                        base64_file_content=False,
                        temp_file_path=self._temp_file_path,
                    ).as_file(),
                )
        else:
            raise KubeconfigError(
                f"exec plugin {exec_config.get('command')!r} returned neither a token nor a "
                "client certificate and key"
            )
        if "expirationTimestamp" in status:
            # The refresh hook re-runs the plugin once this passes (minus a 5-minute skew).
            self.expiry = parse_rfc3339(status["expirationTimestamp"])
        return True


def run_exec_plugin(
    exec_config: Mapping[str, Any], cwd: str | None, cluster: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Run a client.authentication.k8s.io exec plugin; returns its `status` object."""
    command = exec_config.get("command")
    api_version = exec_config.get("apiVersion")
    if not command or not api_version:
        raise KubeconfigError("exec plugin: 'command' and 'apiVersion' are required")
    spec: dict[str, Any] = {"interactive": False}
    if cluster is not None:
        spec["cluster"] = dict(cluster)
    env = dict(os.environ)
    env.update({e["name"]: str(e["value"]) for e in exec_config.get("env") or []})
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}
    )
    # kubectl resolves a command with a path separator against the kubeconfig's directory.
    if os.sep in command and not os.path.isabs(command) and cwd:
        command = os.path.join(cwd, command)
    try:
        proc = subprocess.run(
            [command, *(str(a) for a in exec_config.get("args") or [])],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=EXEC_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise KubeconfigError(f"exec plugin {command!r} not found (is it installed?)") from None
    except PermissionError:
        raise KubeconfigError(f"exec plugin {command!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise KubeconfigError(
            f"exec plugin {command!r} did not answer within {EXEC_TIMEOUT_SECONDS:g} s "
            "(does it wait for an interactive login?)"
        ) from None
    if proc.returncode != 0:
        # Plugins print their reason (e.g. "SSO session expired") on stderr: worth showing.
        reason = _first_line(proc.stderr)
        raise KubeconfigError(
            f"exec plugin {command!r} failed with exit code {proc.returncode}"
            + (f": {reason}" if reason else "")
        )
    try:
        data = json.loads(proc.stdout)
        status = data["status"]
        if not isinstance(status, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise KubeconfigError(
            f"exec plugin {command!r} did not print an ExecCredential with a status"
        ) from None
    return status


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
