"""The admin's cluster form: validation that says what is wrong.

Checks, in order: the kubeconfig (missing or unreadable file, not UTF-8, bad YAML, not a
kubeconfig), the context (unknown, or none chosen and no current-context), whether a client
can be built (certificate files, exec plugin), then — unless the admin ticks "save without
checking" — whether the server answers at all (DNS, refused, timeout, bad certificate).
Credentials and RBAC are the test connection's to report: a cluster can be registered
before its ClusterRoleBinding exists.

Every message is scrubbed of the kubeconfig's secrets; an upload is never echoed back.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.views.decorators.debug import sensitive_variables

from dashboard.clusters import connection as connection_test
from dashboard.clusters.config import split_names
from dashboard.clusters.crypto import DecryptionError, decrypt, encrypt
from dashboard.clusters.redact import kubeconfig_secrets, scrub
from dashboard.clusters.target import Target
from dashboard.coverage.selectors import SelectorError, parse_selector
from dashboard.kube.clients import KubeconfigError, list_contexts
from dashboard.models import Cluster

MAX_KUBECONFIG_BYTES = 1024 * 1024
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@sensitive_variables()
def read_upload(upload: UploadedFile) -> str:
    """The text of an uploaded kubeconfig, or ValidationError saying why not."""
    assert upload.size is not None  # None only for a File of unknown size, never an upload
    if upload.size > MAX_KUBECONFIG_BYTES:
        raise ValidationError("the uploaded file is larger than 1 MiB: not a kubeconfig")
    try:
        return upload.read().decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("the uploaded file is not UTF-8 text: not a kubeconfig") from None


@sensitive_variables()
def contexts_of(path: str = "", content: str = "") -> tuple[list[str], str | None]:
    """(context names, current-context) of a kubeconfig path or text; KubeconfigError."""
    if content:
        # list_contexts tells text from a path by a newline: one-line JSON is text too.
        found = list_contexts(content if "\n" in content else content + "\n")
    else:
        found = list_contexts(path)
    return found.names, found.current


def context_choices(names: list[str], current: str | None, value: str = "") -> list:
    default = f"the file's current-context ({current})" if current else "— choose a context —"
    choices = [("", default)] + [(n, n) for n in names]
    if value and value not in names:
        choices.append((value, value))  # keep what was chosen visible; clean() rejects it
    return choices


# Methods holding kubeconfig text are @sensitive_variables(): Django's debug error page
# shows frame locals, and must never show a decrypted or uploaded kubeconfig.
class ClusterAdminForm(forms.ModelForm):
    kubeconfig_upload = forms.FileField(
        label="Upload a kubeconfig",
        required=False,
        help_text="Stored encrypted; never shown again. Exec credential plugins are refused "
        "for uploads (they would run commands on this server): use a token or client "
        "certificate, or a kubeconfig file on the server.",
    )
    context = forms.CharField(
        required=False,
        widget=forms.Select(choices=[("", "— pick a kubeconfig first —")]),
        help_text="The contexts found in the kubeconfig.",
    )
    skip_connection_check = forms.BooleanField(
        label="Save without checking the connection",
        required=False,
        help_text="Normally the server must answer (a GET /version) before the cluster is saved.",
    )

    class Meta:
        model = Cluster
        fields = [
            "name",
            "slug",
            "enabled",
            "display_order",
            "source",
            "kubeconfig_path",
            "context",
            "scenario",
            "sim_nodes",
            "sim_daemonsets",
            "sim_seed",
            "namespaces_include",
            "namespaces_exclude",
            "daemonset_selector",
            "group_by_label",
            "allow_logs",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._content = ""  # decrypted or uploaded kubeconfig text, in memory only
        self._new_upload = False
        self._secrets: set[str] = set()
        self.context_note = ""
        names, current = self._initial_contexts()
        value = self.data.get("context", "") if self.is_bound else self.initial.get("context", "")
        self.fields["context"].widget.choices = context_choices(names, current, value or "")
        if self.context_note:
            self.fields["context"].help_text = self.context_note

    @sensitive_variables()
    def _initial_contexts(self) -> tuple[list[str], str | None]:
        """Contexts to offer before the admin picks a file (the JS refreshes them after)."""
        data = self.data if self.is_bound else {}
        source = data.get("source") or self.instance.source
        path = data.get("kubeconfig_path", self.instance.kubeconfig_path) or ""
        try:
            if source == Cluster.Source.UPLOADED and self.instance.kubeconfig_encrypted:
                content = decrypt(self.instance.kubeconfig_encrypted)
                return contexts_of(content=content)
            if source == Cluster.Source.KUBECONFIG and path:
                return contexts_of(path=path)
        except (KubeconfigError, DecryptionError) as exc:
            self.context_note = f"Cannot list contexts: {exc}"
        return [], None

    # ------------------------------------------------------------------ fields

    @sensitive_variables()
    def clean_kubeconfig_upload(self) -> None:
        upload = self.cleaned_data.get("kubeconfig_upload")
        if upload:
            self._content = read_upload(upload)
            self._new_upload = True
            self._secrets = kubeconfig_secrets(self._content)
        return None  # never kept in cleaned_data: it is stored encrypted, or not at all

    def _clean_namespaces(self, field: str) -> str:
        names = split_names(self.cleaned_data.get(field, ""))
        bad = [n for n in names if len(n) > 63 or not _NAMESPACE.fullmatch(n)]
        if bad:
            raise ValidationError(
                "not a valid namespace name: %(names)s (lower-case letters, digits and '-')",
                params={"names": ", ".join(bad)},
            )
        return ", ".join(names)

    def clean_namespaces_include(self) -> str:
        return self._clean_namespaces("namespaces_include")

    def clean_namespaces_exclude(self) -> str:
        return self._clean_namespaces("namespaces_exclude")

    def clean_daemonset_selector(self) -> str:
        text = self.cleaned_data.get("daemonset_selector", "").strip()
        try:
            parse_selector(text)
        except SelectorError as exc:
            raise ValidationError(str(exc)) from None
        return text

    # ------------------------------------------------------------------ form

    def clean(self) -> dict[str, Any]:
        super().clean()  # a ModelForm's clean() returns cleaned_data (typed Optional)
        data = self.cleaned_data
        source = data.get("source")
        if source in (Cluster.Source.KUBECONFIG, Cluster.Source.UPLOADED):
            self._clean_kubeconfig(source, data)
        elif source == Cluster.Source.IN_CLUSTER:
            self._check_connection(Target(source=source), data)
        return data

    def _error(self, field: str | None, message: str) -> None:
        self.add_error(field, scrub(message, self._secrets))

    @sensitive_variables()
    def _clean_kubeconfig(self, source: str, data: dict) -> None:
        path = data.get("kubeconfig_path", "").strip()
        if source == Cluster.Source.KUBECONFIG:
            if not path:
                self._error("kubeconfig_path", "give the path of a kubeconfig file on the server")
                return
            self._secrets = Target(source=source, kubeconfig_path=path).secrets()
            where = "kubeconfig_path"
        else:
            if not self._content and self.instance.kubeconfig_encrypted:
                try:
                    self._content = decrypt(self.instance.kubeconfig_encrypted)
                except DecryptionError as exc:
                    self._error("kubeconfig_upload", str(exc))
                    return
                self._secrets = kubeconfig_secrets(self._content)
            if not self._content:
                self._error("kubeconfig_upload", "upload a kubeconfig file")
                return
            where = "kubeconfig_upload"
        try:
            names, current = contexts_of(path=path, content=self._content)
        except KubeconfigError as exc:
            self._error(where, str(exc))
            return
        self.fields["context"].widget.choices = context_choices(
            names, current, data.get("context", "")
        )
        context = data.get("context", "")
        known = ", ".join(names) or "none"
        if context and context not in names:
            self._error("context", f"unknown context {context!r} (contexts in the file: {known})")
            return
        if not context and not current:
            self._error("context", f"the file sets no current-context: choose one of {known}")
            return
        target = Target(
            source=source,
            kubeconfig_path=path,
            kubeconfig_content=self._content,
            context=context,
        )
        self._check_connection(target, data)

    def _check_connection(self, target: Target, data: dict) -> None:
        try:
            client = target.client()
        except KubeconfigError as exc:
            self._error(None, str(exc))
            return
        try:
            if data.get("skip_connection_check"):
                return
            problem = connection_test.reachability_error(target, client=client)
        finally:
            client.close()
        if problem:
            self._error(
                None,
                f"{problem} (tick “Save without checking the connection” to save anyway)",
            )

    @sensitive_variables()
    def save(self, commit: bool = True) -> Cluster:
        cluster = super().save(commit=False)
        if cluster.source == Cluster.Source.UPLOADED:
            if self._new_upload:
                cluster.kubeconfig_encrypted = encrypt(self._content)
        else:
            # Credentials are not kept for a source that does not use them.
            cluster.kubeconfig_encrypted = ""
        if commit:
            cluster.save()
            self.save_m2m()
        return cluster
