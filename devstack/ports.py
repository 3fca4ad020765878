from __future__ import annotations

import socket

from core.ports import port_in_use_message


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    return port_in_use_message(host, port, "") is None


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` when it is free, otherwise any port the kernel hands out."""
    if preferred is not None and is_port_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
