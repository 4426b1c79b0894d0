"""The node id: which process of the deployment wrote a log line or a metric."""

from __future__ import annotations

import logging
import os
import socket


def resolve_node_id(configured: str) -> str:
    """The configured id, else ``<hostname>-<pid>`` (unique on one machine, readable)."""
    return configured or f"{socket.gethostname()}-{os.getpid()}"


class NodeFilter(logging.Filter):
    """Adds ``node`` to every record, so the JSON formatter writes it as a field and the
    text format can show it; installed on the handler, so third-party loggers get it too."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node
        return True
