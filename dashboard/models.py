"""Clusters the dashboard watches, and wall displays. Runtime status lives in the
collector, not here (see `ClusterCollector.runtime_status`)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Cluster(models.Model):
    class Source(models.TextChoices):
        SIMULATED = "simulated", "Simulated cluster"
        KUBECONFIG = "kubeconfig", "Kubeconfig file on the server"
        UPLOADED = "uploaded", "Uploaded kubeconfig (encrypted at rest)"
        IN_CLUSTER = "in-cluster", "In-cluster service account"

    class Scenario(models.TextChoices):
        DEMO = "demo", "Demo (≈40 nodes, 8 DaemonSets)"
        LARGE = "large", "Large (configurable size)"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SIMULATED)
    kubeconfig_path = models.CharField(max_length=500, blank=True)
    # Fernet token of the uploaded kubeconfig (dashboard/clusters/crypto.py); never shown or logged.
    kubeconfig_encrypted = models.TextField(blank=True, editable=False)
    context = models.CharField(max_length=200, blank=True)
    scenario = models.CharField(max_length=20, choices=Scenario.choices, default=Scenario.DEMO)
    sim_nodes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    sim_daemonsets = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    sim_seed = models.PositiveIntegerField(default=1)
    namespaces_include = models.CharField(
        "namespaces to include",
        max_length=1000,
        blank=True,
        help_text="Comma-separated; empty = all namespaces. With exactly one, only that "
        "namespace is listed and watched.",
    )
    namespaces_exclude = models.CharField(
        "namespaces to exclude", max_length=1000, blank=True, help_text="Comma-separated."
    )
    daemonset_selector = models.CharField(
        "DaemonSet label selector",
        max_length=500,
        blank=True,
        help_text="kubectl syntax, e.g. tier=node,team in (infra,obs). Empty = every DaemonSet.",
    )
    group_by_label = models.CharField(
        max_length=200, blank=True, help_text="Node label to group rows by (default: pool or zone)"
    )
    # Reading container logs is off unless an admin switches it on: logs can carry
    # secrets and personal data, and the RBAC grant (get pods/log) is a separate, optional
    # rule (deploy/). Read only when a signed-in user opens a crash-looping cell.
    allow_logs = models.BooleanField(
        "show crash-loop logs",
        default=False,
        help_text="Let signed-in users see the last lines of a crashed container's previous "
        "log in the cell detail (read when the cell is opened, never by the collector). "
        "Needs the optional RBAC rule: get pods/log.",
    )
    enabled = models.BooleanField(default=True)
    display_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_uploaded_kubeconfig(self) -> bool:
        return bool(self.kubeconfig_encrypted)


class WallDisplay(models.Model):
    """A read-only screen in an operations room, reached by a secret URL.

    Only a SHA-256 hash of the token is stored (see dashboard/access.py): the token is shown
    once when created or rotated, and a database leak exposes no live wall URL.
    """

    class Theme(models.TextChoices):
        DARK = "dark", "Dark"
        HIGH_CONTRAST = "high-contrast", "High contrast (dark)"
        LIGHT = "light", "Light"

    name = models.CharField(max_length=100, unique=True)
    clusters = models.ManyToManyField(Cluster, related_name="wall_displays", blank=True)
    rotation_seconds = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(5), MaxValueValidator(3600)],
        help_text="When the clusters do not fit side by side, show each this long.",
    )
    animations = models.BooleanField(
        default=True, help_text="Switch off for weak devices (e.g. a Raspberry Pi)."
    )
    theme = models.CharField(max_length=20, choices=Theme.choices, default=Theme.DARK)
    # hex SHA-256 of the URL token; NULL when revoked (unique allows several NULLs).
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    token_hint = models.CharField(
        max_length=8, blank=True, editable=False, help_text="First characters of the token."
    )
    token_created_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Not a field: the admin holds a just-issued token here until response_add shows it once.
    _new_token: str

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def active(self) -> bool:
        return self.token_hash is not None


class CoverageEvent(models.Model):
    """One change in a cluster's coverage, for the history pages (dashboard/history/recorder.py).

    `cell` rows say that a (node, DaemonSet) cell entered `state` at `at` (from `previous`,
    the last recorded state); flapping within one write batch is coalesced into one row,
    `changes` counting the state changes it stands for. `node+`/`node-`/`ds+`/`ds-` record
    arrivals and removals. A `sync` row marks a collector (re)starting to record: states
    before it end there, and cells without a row after it were fine (healthy, outdated or
    not targeted) at that moment.
    """

    class Kind(models.TextChoices):
        CELL = "cell", "cell state"
        NODE_ADDED = "node+", "node added"
        NODE_REMOVED = "node-", "node removed"
        DS_ADDED = "ds+", "DaemonSet added"
        DS_REMOVED = "ds-", "DaemonSet removed"
        SYNC = "sync", "recording (re)started"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField()
    kind = models.CharField(max_length=5, choices=Kind.choices)
    node = models.CharField(max_length=253, blank=True)
    daemonset = models.CharField(max_length=320, blank=True)  # namespace/name
    state = models.CharField(max_length=20, blank=True)
    previous = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    changes = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["cluster", "daemonset", "at"], name="history_ds_at"),
            models.Index(fields=["cluster", "node", "at"], name="history_node_at"),
            models.Index(fields=["cluster", "kind", "at"], name="history_kind_at"),
            models.Index(fields=["at"], name="history_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.node} {self.daemonset} {self.state}"
