"""Where and how to reach a cluster's API server: the one place that turns a cluster's
configuration into a Kubernetes client. The collector (dashboard/collect/sources.py) and
the admin's connection checks (dashboard/clusters/connection.py) both build their client
here, so they connect the same way and watch the same namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.views.decorators.debug import sensitive_variables
from kubernetes.client import ApiClient

from dashboard.clusters.config import ClusterConfig
from dashboard.clusters.crypto import decrypt
from dashboard.clusters.redact import kubeconfig_secrets
from dashboard.kube.clients import (
    KubeconfigError,
    client_from_kubeconfig,
    client_from_kubeconfig_content,
    client_in_cluster,
)
from dashboard.kube.kubeconfig_yaml import MAX_BYTES

# Cluster.source values (dashboard/models.py), spelled here so this module needs no ORM.
IN_CLUSTER = "in-cluster"
UPLOADED = "uploaded"
KUBECONFIG = "kubeconfig"


@dataclass
class Target:
    """Where and how to connect, detached from a saved row (forms check unsaved input)."""

    source: str
    kubeconfig_path: str = ""
    kubeconfig_content: str = field(default="", repr=False)
    context: str = ""
    namespace: str | None = None

    @classmethod
    @sensitive_variables()
    def of(cls, config: ClusterConfig) -> Target:
        """The target of a cluster's configuration; decrypts an uploaded kubeconfig
        (DecryptionError when the key cannot)."""
        content = ""
        if config.source == UPLOADED and config.kubeconfig_encrypted:
            content = decrypt(config.kubeconfig_encrypted)
        return cls(
            source=config.source,
            kubeconfig_path=config.kubeconfig_path,
            kubeconfig_content=content,
            context=config.context,
            namespace=config.single_namespace,
        )

    def secrets(self) -> set[str]:
        """Every secret string of the kubeconfig in use: messages are scrubbed of them."""
        if self.kubeconfig_content:
            return kubeconfig_secrets(self.kubeconfig_content)
        if self.source == KUBECONFIG and self.kubeconfig_path:
            try:
                with open(self.kubeconfig_path, encoding="utf-8") as f:
                    # Bounded: a file past the limit is refused by the client anyway.
                    return kubeconfig_secrets(f.read(MAX_BYTES + 1))
            except (OSError, UnicodeDecodeError, ValueError):
                return set()  # the client reports the unreadable file itself
        return set()

    @sensitive_variables()
    def client(self) -> ApiClient:
        """An ApiClient, or KubeconfigError saying what is wrong with the configuration.
        Exec credential plugins stay off for uploads: they would run commands on this host."""
        context = self.context or None
        if self.source == IN_CLUSTER:
            return client_in_cluster()
        if self.source == UPLOADED:
            if not self.kubeconfig_content:
                raise KubeconfigError("no kubeconfig has been uploaded")
            return client_from_kubeconfig_content(self.kubeconfig_content, context)
        if not self.kubeconfig_path:
            raise KubeconfigError("no kubeconfig path given")
        return client_from_kubeconfig(self.kubeconfig_path, context)
