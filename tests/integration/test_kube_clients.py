"""Client construction and failure words, through real files, processes and sockets."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from dashboard.kube.clients import (
    KubeconfigError,
    client_from_kubeconfig,
    client_from_kubeconfig_content,
    client_from_kubeconfigs,
    client_in_cluster,
    list_contexts,
)
from dashboard.kube.errors import RequestContext, classify, from_status
from dashboard.kube.snapshot import ClusterUnreachable, list_cluster
from dashboard.simulator.store import ObjectStore
from tests.helpers.kube_support import TOKEN, fill, read_only_server
from tests.helpers.ports import free_port


@pytest.fixture
def server():
    store = ObjectStore()
    fill(store)
    with read_only_server(store) as srv:
        yield srv


def kubeconfig(server_url: str, user: dict | None = None, cluster: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server_url, **(cluster or {})}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": TOKEN}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "c", "user": "u"}},
            {"name": "two", "context": {"cluster": "c", "user": "u"}},
        ],
        "current-context": "one",
    }


def write(tmp_path, config, name="kubeconfig"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config) if isinstance(config, dict) else config)
    return path


# --------------------------------------------------------------------------- kubeconfigs


def test_client_from_kubeconfig_lists_the_cluster(server, tmp_path):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc"), context="fake")
    snapshot = list_cluster(client)
    assert len(snapshot["nodes"]) == 3 and len(snapshot["pods"]) == 10


def test_client_from_content_and_contexts(server, tmp_path):
    text = yaml.safe_dump(kubeconfig(server.url))
    assert list_contexts(text) == (["one", "two"], "one")
    assert list_contexts(write(tmp_path, text)) == (["one", "two"], "one")
    client = client_from_kubeconfig_content(text, context="two")
    assert len(list_cluster(client)["daemonsets"]) == 1


def test_each_client_has_its_own_configuration(server, tmp_path):
    from kubernetes.client import Configuration

    before = Configuration.get_default_copy().host
    a = client_from_kubeconfig(write(tmp_path, kubeconfig(server.url), "a"))
    b = client_from_kubeconfig(write(tmp_path, kubeconfig("http://127.0.0.1:1"), "b"))
    assert a.configuration is not b.configuration
    assert a.configuration.host != b.configuration.host
    assert Configuration.get_default_copy().host == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("clusters: [unclosed", "invalid YAML at line 1"),
        ("just a string", "not a kubeconfig"),
        ("apiVersion: v1\nkind: Pod\n", "not a kubeconfig"),
    ],
)
def test_broken_kubeconfig_content(tmp_path, content, expected):
    with pytest.raises(KubeconfigError, match=expected):
        client_from_kubeconfig(write(tmp_path, content))


def test_kubeconfigs_merge_like_kubectl(tmp_path):
    """$KUBECONFIG=a:b — first definition of a name wins, the first current-context wins,
    missing files are skipped, and each file's relative paths resolve against its own
    directory."""
    cert, _ = make_cert("ca")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ca.pem").write_bytes(cert)
    a = kubeconfig("https://a.example:6443")
    b = kubeconfig("https://b.example:6443", cluster={"certificate-authority": "ca.pem"})
    b["clusters"][0]["name"] = "cb"
    b["contexts"] = [
        {"name": "one", "context": {"cluster": "cb", "user": "u"}},  # shadowed by a's "one"
        {"name": "bee", "context": {"cluster": "cb", "user": "u"}},
    ]
    b["current-context"] = "bee"
    paths = [str(tmp_path / "absent"), str(write(tmp_path / "a", a)), str(write(tmp_path / "b", b))]
    assert client_from_kubeconfigs(paths).configuration.host == "https://a.example:6443"
    bee = client_from_kubeconfigs(paths, context="bee").configuration
    assert bee.host == "https://b.example:6443"
    assert bee.ssl_ca_cert == str(tmp_path / "b" / "ca.pem")
    with pytest.raises(KubeconfigError, match="no kubeconfig found"):
        client_from_kubeconfigs([str(tmp_path / "absent")])


def test_missing_kubeconfig_file(tmp_path):
    with pytest.raises(KubeconfigError, match=r"kubeconfig .*nope: file not found"):
        client_from_kubeconfig(tmp_path / "nope")


def test_unknown_context_lists_the_known_ones(tmp_path):
    path = write(tmp_path, kubeconfig("https://example.invalid"))
    with pytest.raises(KubeconfigError) as err:
        client_from_kubeconfig(path, context="prod")
    assert str(err.value) == "unknown context 'prod' (known contexts: one, two)"


def test_missing_ca_file_is_named(tmp_path):
    config = kubeconfig("https://127.0.0.1:6443", cluster={"certificate-authority": "ca.pem"})
    with pytest.raises(KubeconfigError, match=r"certificate-authority file not found: .*ca\.pem"):
        client_from_kubeconfig(write(tmp_path, config))


def test_invalid_ca_data(tmp_path):
    bad = base64.b64encode(b"-----BEGIN CERTIFICATE-----\ngarbage\n").decode()
    config = kubeconfig("https://127.0.0.1:6443", cluster={"certificate-authority-data": bad})
    with pytest.raises(KubeconfigError, match="not a valid PEM CA certificate"):
        client_from_kubeconfig(write(tmp_path, config))


def test_mismatched_client_certificate(tmp_path):
    cert_a, _ = make_cert("a")
    _, key_b = make_cert("b")
    user = {
        "client-certificate-data": base64.b64encode(cert_a).decode(),
        "client-key-data": base64.b64encode(key_b).decode(),
    }
    with pytest.raises(KubeconfigError, match="client certificate/key") as err:
        client_from_kubeconfig(write(tmp_path, kubeconfig("https://127.0.0.1:6443", user)))
    assert "PRIVATE KEY" not in str(err.value)


def test_messages_never_carry_secrets(tmp_path):
    config = kubeconfig("https://127.0.0.1:6443", user={"token": "s3cr3t", "password": "pw1"})
    config["contexts"][0]["context"]["user"] = "missing"
    with pytest.raises(KubeconfigError) as err:
        client_from_kubeconfig(write(tmp_path, config))
    assert "s3cr3t" not in str(err.value) and "pw1" not in str(err.value)
    with pytest.raises(KubeconfigError) as err:
        client_from_kubeconfig(write(tmp_path, "users: [{token: s3cr3t\n"))
    assert "s3cr3t" not in str(err.value)


# --------------------------------------------------------------------------- exec plugins


def exec_plugin(tmp_path, body: str):
    script = tmp_path / "plugin.py"
    script.write_text(body)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "env": [{"name": "PLUGIN_TOKEN", "value": TOKEN}],
        }
    }


def test_exec_plugin_runs_non_interactively(server, tmp_path):
    user = exec_plugin(
        tmp_path,
        "import json, os, sys\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "assert info['spec']['interactive'] is False, info\n"
        "assert sys.stdin is None or sys.stdin.read() == ''\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',\n"
        "  'kind': 'ExecCredential', 'status': {'token': os.environ['PLUGIN_TOKEN'],\n"
        "  'expirationTimestamp': '2099-01-01T00:00:00Z'}}))\n",
    )
    client = client_from_kubeconfig(write(tmp_path, kubeconfig(server.url, user)))
    assert len(list_cluster(client)["nodes"]) == 3


def test_exec_plugin_failure_is_reported(tmp_path):
    user = exec_plugin(
        tmp_path, "import sys\nsys.stderr.write('SSO session expired, log in again\\n')\nexit(3)\n"
    )
    with pytest.raises(KubeconfigError) as err:
        client_from_kubeconfig(write(tmp_path, kubeconfig("http://127.0.0.1:1", user)))
    assert "exit code 3: SSO session expired, log in again" in str(err.value)


def test_exec_plugin_refused_in_uploaded_content(tmp_path):
    text = yaml.safe_dump(kubeconfig("http://127.0.0.1:1", exec_plugin(tmp_path, "")))
    with pytest.raises(KubeconfigError, match="exec plugins are disabled for uploaded"):
        client_from_kubeconfig_content(text)


# --------------------------------------------------------------------------- in-cluster


def test_in_cluster_client(tmp_path):
    cert, _ = make_cert("ca")
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes(cert)
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    client = client_in_cluster(str(tmp_path / "token"), str(tmp_path / "ca.crt"), env)
    assert client.configuration.host == "https://10.0.0.1:443"
    with pytest.raises(KubeconfigError, match="not running in a pod"):
        client_in_cluster(str(tmp_path / "token"), str(tmp_path / "ca.crt"), {})


# --------------------------------------------------------------------------- failures in words


def unreachable(client) -> ClusterUnreachable:
    with pytest.raises(ClusterUnreachable) as err:
        list_cluster(client, request_timeout=(2.0, 2.0))
    return err.value


def test_connection_refused(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    problem = unreachable(client_from_kubeconfig(write(tmp_path, kubeconfig(url)))).problem
    assert problem.kind == "refused"
    assert problem.message == f"connection refused by {url} (is it running?)"


def test_dns_failure(tmp_path):
    client = client_from_kubeconfig(write(tmp_path, kubeconfig("https://no-such-host.invalid")))
    problem = unreachable(client).problem
    assert problem.kind == "dns"
    assert "'no-such-host.invalid' does not resolve" in problem.message


def test_tls_verify_failure_says_so(tmp_path):
    server_cert, server_key = make_cert("127.0.0.1", ip="127.0.0.1")
    other_ca, _ = make_cert("someone-else")
    (tmp_path / "srv.crt").write_bytes(server_cert)
    (tmp_path / "srv.key").write_bytes(server_key)
    httpd = HTTPServer(("127.0.0.1", 0), _Hello)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        ca = {"certificate-authority-data": base64.b64encode(other_ca).decode()}
        url = f"https://127.0.0.1:{httpd.server_address[1]}"
        client = client_from_kubeconfig(write(tmp_path, kubeconfig(url, cluster=ca)))
        problem = unreachable(client).problem
        assert problem.kind == "tls"
        assert problem.message.startswith(f"TLS: certificate verify failed with {url}")
        assert "certificate-authority" in problem.message
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_unauthorized_and_forbidden_from_the_server(server, tmp_path):
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc", token="nope"))
    assert unreachable(client).problem.kind == "unauthorized"
    server.faults.forbid("list", "daemonsets")
    client = client_from_kubeconfig(server.write_kubeconfig(tmp_path / "kc2"))
    err = unreachable(client)
    assert err.resource == "daemonsets"
    assert err.problem.message == (
        "forbidden: cannot list daemonsets.apps at the cluster scope — grant get/list/watch "
        'on it (user "system:serviceaccount:daemonviz:daemonviz")'
    )


def test_status_words():
    ctx = RequestContext(verb="watch", resource="pods", namespace="kube-system")
    gone = from_status({"code": 410, "reason": "Expired", "message": "too old resource version"})
    assert gone.kind == "gone"
    forbidden = from_status({"code": 403, "message": "no"}, ctx)
    assert forbidden.message.startswith('forbidden: cannot watch pods in namespace "kube-system"')
    assert from_status({"code": 503, "message": "etcd down"}).message == (
        "API server error (503): etcd down"
    )
    assert classify(ValueError("bad json")).kind == "protocol"


# --------------------------------------------------------------------------- helpers


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"kind": "NodeList", "items": [], "metadata": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def make_cert(common_name: str, ip: str | None = None) -> tuple[bytes, bytes]:
    """A self-signed certificate and its key, PEM."""
    crypto = pytest.importorskip("cryptography")
    del crypto
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    cert = builder.sign(key, hashes.SHA256())
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
