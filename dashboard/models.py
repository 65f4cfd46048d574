"""Clusters the dashboard watches. Runtime status lives in the collector, not here."""

from django.core.validators import MinValueValidator
from django.db import models


class Cluster(models.Model):
    class Source(models.TextChoices):
        SIMULATED = "simulated", "Simulated cluster"
        KUBECONFIG = "kubeconfig", "Kubeconfig file"
        IN_CLUSTER = "in-cluster", "In-cluster service account"

    class Scenario(models.TextChoices):
        DEMO = "demo", "Demo (≈40 nodes, 8 DaemonSets)"
        LARGE = "large", "Large (configurable size)"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SIMULATED)
    kubeconfig_path = models.CharField(max_length=500, blank=True)
    context = models.CharField(max_length=200, blank=True)
    scenario = models.CharField(max_length=20, choices=Scenario.choices, default=Scenario.DEMO)
    sim_nodes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    sim_daemonsets = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    sim_seed = models.PositiveIntegerField(default=1)
    group_by_label = models.CharField(
        max_length=200, blank=True, help_text="Node label to group rows by (default: pool or zone)"
    )
    enabled = models.BooleanField(default=True)
    display_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return self.name
