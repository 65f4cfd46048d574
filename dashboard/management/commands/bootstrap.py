"""`manage.py bootstrap`: first-run set-up for the embedded default.

Registers the simulated demo cluster (and a second one, DAEMONVIZ_DEMO_FLEET) when no
cluster exists, and makes sure someone can sign
in: an admin user from DAEMONVIZ_ADMIN_USER / DAEMONVIZ_ADMIN_PASSWORD, or, when no
user exists at all, `admin` with a random password printed once (it is not stored in
clear anywhere, so write it down or set the env vars).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from dashboard.models import Cluster


class Command(BaseCommand):
    help = "Register the demo cluster and an admin user on first start."

    def handle(self, *args: Any, **options: Any) -> None:
        if not Cluster.objects.exists() and settings.DAEMONVIZ_DEMO_CLUSTER:
            Cluster.objects.create(
                name="Demo (simulated)", slug="demo", source="simulated", scenario="demo"
            )
            if settings.DAEMONVIZ_DEMO_FLEET:
                # A second, differently shaped cluster, so the overview's fleet matrix has
                # something to compare from the first start.
                Cluster.objects.create(
                    name="Staging (simulated)",
                    slug="staging",
                    source="simulated",
                    scenario="demo",
                    sim_seed=7,
                    sim_nodes=14,
                    sim_daemonsets=11,
                    display_order=1,
                )
                self.stdout.write("Registered two simulated clusters: demo and staging.")
            else:
                self.stdout.write("Registered the simulated demo cluster.")
        self._ensure_admin()

    def _ensure_admin(self) -> None:
        User = get_user_model()
        username = os.environ.get("DAEMONVIZ_ADMIN_USER", "admin")
        password = os.environ.get("DAEMONVIZ_ADMIN_PASSWORD")
        user = User.objects.filter(username=username).first()
        if password:
            if user is None:
                user = User(username=username, is_staff=True, is_superuser=True)
            user.set_password(password)
            user.save()
            self.stdout.write(
                f"Sign in as {username!r} with the password from DAEMONVIZ_ADMIN_PASSWORD."
            )
            return
        if User.objects.exists():
            self.stdout.write(
                "Sign in with an existing account (manage.py changepassword NAME to reset)."
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(f"Created admin user {username!r} with password: {password}")
            + "\n(shown once; set DAEMONVIZ_ADMIN_PASSWORD to choose your own)"
        )
