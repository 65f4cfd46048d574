"""The Preview page (dashboard/grid/preview_views.py) through Django's test client: the
prediction, its limits and errors, and that the live matrix is left as it was."""

from __future__ import annotations

import pytest
import yaml
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from dashboard.clusters.config import ClusterConfig
from dashboard.collect.registry import registry
from dashboard.coverage.plan_input import MAX_PLAN_BYTES
from dashboard.models import Cluster
from tests.helpers import collectors, k8s

MANIFEST = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "planned", "namespace": "ops"},
    "spec": {
        "selector": {"matchLabels": {"app": "planned"}},
        "template": {
            "metadata": {"labels": {"app": "planned"}},
            "spec": {
                "nodeSelector": {"pool": "gpu"},
                "containers": [{"name": "a", "image": "registry.example/a:1"}],
            },
        },
    },
}


@pytest.fixture
def cluster(db):
    c = Cluster.objects.create(name="Alpha", slug="alpha")
    collector = collectors.make(ClusterConfig(slug="alpha", name="Alpha"), get_channel_layer())
    collector.matrix = k8s.build(
        [k8s.node("gpu-1", labels={"pool": "gpu"}), k8s.node("web-1", labels={"pool": "web"})]
    )
    registry.register(collector)
    return c, collector


@pytest.fixture
def viewer_client(db):
    user = get_user_model().objects.create_user("viewer", password="viewer-pw-123")
    c = Client()
    c.force_login(user)
    return c


def test_a_manifest_is_predicted_and_the_live_matrix_is_untouched(viewer_client, cluster):
    _, collector = cluster
    before = dict(collector.matrix.daemonsets), collector.matrix.revision
    resp = viewer_client.post("/clusters/alpha/preview/", {"plan": yaml.safe_dump(MANIFEST)})
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'data-node="gpu-1"' in html
    assert 'data-plan="starts_on"' in html and 'data-plan="not_targeted"' in html
    assert "nodeSelector pool=gpu not matched (node has pool=web)" in html
    assert (dict(collector.matrix.daemonsets), collector.matrix.revision) == before


def test_a_changed_daemonset_shows_its_cells_today_beside_the_prediction(viewer_client, db):
    Cluster.objects.create(name="Bravo", slug="bravo")
    ds = k8s.daemonset("planned", "ops", match_labels={"app": "planned"})
    objs = [
        k8s.node("gpu-1", labels={"pool": "gpu"}),
        k8s.node("web-1", labels={"pool": "web"}),
        ds,
        k8s.controller_revision(ds, 1, "rev1hash"),
        k8s.daemon_pod(ds, "gpu-1"),
        k8s.daemon_pod(ds, "web-1"),
    ]
    collector = collectors.make(ClusterConfig(slug="bravo", name="Bravo"), get_channel_layer())
    collector.matrix = k8s.build(objs)
    registry.register(collector)
    resp = viewer_client.post("/clusters/bravo/preview/", {"plan": yaml.safe_dump(MANIFEST)})
    html = resp.content.decode()
    assert resp.status_code == 200
    # web-1 loses its pod (the nodeSelector); gpu-1's pod is replaced (a new image).
    assert 'data-plan="stops_on"' in html and 'data-plan="replaced_on"' in html
    assert "now ✓ healthy →" in html


def test_hostile_label_values_are_escaped(viewer_client, db):
    Cluster.objects.create(name="Evil", slug="evil")
    evil = '"><script>alert(1)</script>'
    collector = collectors.make(ClusterConfig(slug="evil", name="Evil"), get_channel_layer())
    collector.matrix = k8s.build([k8s.node("web-1", labels={"pool": evil})])
    registry.register(collector)
    resp = viewer_client.post("/clusters/evil/preview/", {"plan": yaml.safe_dump(MANIFEST)})
    html = resp.content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_errors_are_one_line_and_the_text_is_kept(viewer_client, cluster):
    text = "kind: DaemonSet\nmetadata: {name: [\n"
    resp = viewer_client.post("/clusters/alpha/preview/", {"plan": text})
    assert resp.status_code == 400
    html = resp.content.decode()
    assert "document 1 (line 1): invalid YAML at line 3, column 1" in html
    assert "metadata: {name: [" in html  # the textarea keeps what was pasted


def test_input_is_size_limited(viewer_client, cluster):
    big = "#" * (MAX_PLAN_BYTES + 1)
    resp = viewer_client.post("/clusters/alpha/preview/", {"plan": big})
    assert resp.status_code == 400
    assert "a plan may be at most 512 KiB" in resp.content.decode()
    upload = SimpleUploadedFile("big.yaml", big.encode(), content_type="text/plain")
    resp = viewer_client.post("/clusters/alpha/preview/", {"plan": "", "file": upload})
    assert resp.status_code == 400
    assert "the file has 524,289 bytes" in resp.content.decode()


def test_an_uploaded_file_wins_over_the_text(viewer_client, cluster):
    upload = SimpleUploadedFile("taint.txt", b"taint node/gpu-1 k=v:NoExecute\n")
    resp = viewer_client.post(
        "/clusters/alpha/preview/", {"plan": yaml.safe_dump(MANIFEST), "file": upload}
    )
    assert resp.status_code == 200
    assert "taint node/gpu-1 k=v:NoExecute" in resp.content.decode()
