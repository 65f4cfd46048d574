"""`manage.py createviewer NAME`: a read-only dashboard user (the *viewer* role).

Viewers see every dashboard page and live grid but never the admin (they are not staff).
The password is read from --password-stdin, or generated and printed once.
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Create (or reset the password of) a read-only viewer account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of stdin instead of generating one",
        )

    def handle(self, *args: Any, username: str, password_stdin: bool, **options: Any) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is not None and (user.is_staff or user.is_superuser):
            raise CommandError(
                f"{username!r} is an admin; a viewer must be a separate account "
                "(remove staff status in the admin to demote it)"
            )
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
            generated = False
        else:
            password = secrets.token_urlsafe(12)
            generated = True
        candidate = user or User(username=username)
        try:
            validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        created = user is None
        if user is None:
            user = User.objects.create_user(username=username, password=password)
        else:
            user.set_password(password)
            user.is_active = True
            user.save()
        verb = "Created viewer" if created else "Reset the password of viewer"
        if generated:
            # Printed once, never stored in clear: write it down or use --password-stdin.
            self.stdout.write(self.style.SUCCESS(f"{verb} {username!r} with password: {password}"))
        else:
            self.stdout.write(self.style.SUCCESS(f"{verb} {username!r}."))
