"""`manage.py breakglass NAME`: a break-glass admin, who may sign in with a password even
when DAEMONVIZ_LOCAL_LOGIN=false — the way in when the identity provider is down.

Creates (or resets the password of) a superuser in the break-glass group. The password is
read from --password-stdin, or generated and printed once. --remove takes the account out
of the group again (it keeps its password, but cannot use it while local sign-in is off).
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.auth.local import BREAK_GLASS_GROUP


class Command(BaseCommand):
    help = "Create a break-glass admin (password sign-in even with DAEMONVIZ_LOCAL_LOGIN=false)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password-stdin", action="store_true")
        parser.add_argument("--remove", action="store_true", help="leave the break-glass group")

    def handle(
        self, *args: Any, username: str, password_stdin: bool, remove: bool, **options: Any
    ) -> None:
        User = get_user_model()
        group, _ = Group.objects.get_or_create(name=BREAK_GLASS_GROUP)
        user = User.objects.filter(username=username).first()
        if remove:
            if user is None:
                raise CommandError(f"no user {username!r}")
            user.groups.remove(group)
            self.stdout.write(f"{username} is no longer a break-glass admin")
            return
        if password_stdin:
            password, generated = sys.stdin.readline().rstrip("\n"), False
        else:
            password, generated = secrets.token_urlsafe(16), True
        candidate = user or User(username=username)
        try:
            validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        candidate.is_staff = candidate.is_superuser = candidate.is_active = True
        candidate.set_password(password)
        candidate.save()
        candidate.groups.add(group)
        self.stdout.write(
            f"break-glass admin {username} {'created' if user is None else 'updated'}"
        )
        if generated:
            self.stdout.write(f"password: {password}")
