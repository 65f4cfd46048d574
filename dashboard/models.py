"""Clusters the dashboard watches, and wall displays. Runtime status lives in the
collector, not here (see `ClusterCollector.runtime_status`)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def split_names(text: str) -> tuple[str, ...]:
    """ "a, b c" → ("a", "b", "c"): namespace lists are typed comma- or space-separated."""
    return tuple(dict.fromkeys(p for p in text.replace(",", " ").split() if p))


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
    # Fernet token of the uploaded kubeconfig (dashboard/crypto.py); never shown or logged.
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

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def active(self) -> bool:
        return self.token_hash is not None
