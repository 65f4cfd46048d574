"""A free TCP port for a server a test (or a bench script) is about to start."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, picked by the OS. Another process may take it
    before the server binds it; the callers' start-up checks report that."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
