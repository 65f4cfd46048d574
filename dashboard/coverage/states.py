"""The states a (node, DaemonSet) cell can be in, in the order of docs/cells.md.

Each state carries a symbol (so the grid reads without colour), a label, a severity used
to sort "worst first", and the summary bucket it counts towards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class StateInfo:
    symbol: str
    label: str
    severity: int  # higher is worse
    bucket: str  # healthy | outdated | progressing | failing | missing | misscheduled | idle


class State(StrEnum):
    NOT_TARGETED = "not-targeted"
    MISSCHEDULED = "misscheduled"
    MISSING = "missing"
    SURGE = "surge"
    TERMINATING = "terminating"
    FAILED = "failed"
    UNSCHEDULABLE = "unschedulable"
    STARTING = "starting"
    INIT_ERROR = "init-error"
    IMAGE_ERROR = "image-error"
    CONFIG_ERROR = "config-error"
    CRASH_LOOPING = "crash-looping"
    NOT_READY = "not-ready"
    NOT_AVAILABLE = "not-available"
    OUTDATED = "outdated"
    HEALTHY = "healthy"
    # Static pods only (coverage/static.py): no desired set, so "not here" is no problem.
    ABSENT = "absent"

    @property
    def info(self) -> StateInfo:
        return STATE_INFO[self]

    @property
    def symbol(self) -> str:
        return STATE_INFO[self].symbol

    @property
    def label(self) -> str:
        return STATE_INFO[self].label

    @property
    def severity(self) -> int:
        return STATE_INFO[self].severity

    @property
    def bucket(self) -> str:
        return STATE_INFO[self].bucket

    @property
    def is_problem(self) -> bool:
        return self.bucket in ("failing", "missing", "misscheduled", "progressing")


STATE_INFO: dict[State, StateInfo] = {
    State.NOT_TARGETED: StateInfo("·", "not targeted", 0, "idle"),
    State.MISSCHEDULED: StateInfo("≠", "misscheduled", 55, "misscheduled"),
    State.MISSING: StateInfo("∅", "missing", 90, "missing"),
    State.SURGE: StateInfo("⇉", "surge / duplicate", 30, "progressing"),
    State.TERMINATING: StateInfo("↓", "terminating", 35, "progressing"),
    State.FAILED: StateInfo("✗", "failed", 85, "failing"),
    State.UNSCHEDULABLE: StateInfo("⊘", "unschedulable", 80, "failing"),
    State.STARTING: StateInfo("…", "starting", 25, "progressing"),
    State.INIT_ERROR: StateInfo("▲", "init error", 75, "failing"),
    State.IMAGE_ERROR: StateInfo("▼", "image error", 75, "failing"),
    State.CONFIG_ERROR: StateInfo("◆", "config error", 75, "failing"),
    State.CRASH_LOOPING: StateInfo("↻", "crash-looping", 70, "failing"),
    State.NOT_READY: StateInfo("○", "not ready", 50, "progressing"),
    State.NOT_AVAILABLE: StateInfo("◔", "ready, not yet available", 20, "progressing"),
    State.OUTDATED: StateInfo("↑", "healthy, outdated", 10, "outdated"),
    State.HEALTHY: StateInfo("✓", "healthy", 1, "healthy"),
    State.ABSENT: StateInfo("–", "absent (static pod)", 0, "idle"),
}

# Waiting reasons grouped as the kubelet reports them (docs/cells.md).
IMAGE_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
        "SignatureValidationFailed",
        "ImageInspectError",
    }
)
CONFIG_REASONS = frozenset(
    {
        "CreateContainerConfigError",
        "CreateContainerError",
        "PreCreateHookError",
        "PreStartHookError",
        "PostStartHookError",
        "RunContainerError",
    }
)
STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})
