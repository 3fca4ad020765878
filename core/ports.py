from __future__ import annotations

import socket


def port_in_use_message(host: str, port: int, variable: str) -> str | None:
    """A one-line explanation when `host:port` cannot be bound, else None."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return (
                f"kopilka: port {port} on {host} is already taken ({exc.strerror}); "
                f"stop what uses it or set {variable} to another port"
            )
    return None
