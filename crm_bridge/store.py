"""CrmStore: the CRM store callcenter talks to.

Writes: ``apply_events`` appends events to the timeline (once per event id),
rebuilds the record of every contact that got a new event, resolves the
customer, and — in the same transaction — writes an outbox row for every change
that must leave the building. Reads: the questions callcenter asks (customer by
address, recent history, screen-pop bundle, order status), each a handful of
indexed queries.

Concurrency: on PostgreSQL each batch takes a transaction-scoped advisory lock
per contact (in sorted order, so batches cannot deadlock) before reading the
timeline, so two nodes writing events of one contact never overwrite each
other's rebuild. SQLite has one writer at a time anyway; an in-process lock
keeps our own tasks from tripping over "database is locked".

The class is assembled from one module per concern (see ``store_core``).
"""

from __future__ import annotations

from crm_bridge.customers import CustomersMixin
from crm_bridge.ingest import ApplyResult, IngestMixin
from crm_bridge.queries import QueriesMixin
from crm_bridge.recovery import RecoveryMixin
from crm_bridge.store_core import DEFAULT_URL, ContactPointConflict, CrmError, NotFound

__all__ = ["DEFAULT_URL", "ApplyResult", "ContactPointConflict", "CrmError", "CrmStore", "NotFound"]


class CrmStore(RecoveryMixin, IngestMixin, CustomersMixin, QueriesMixin):
    """The CRM store. ``url`` is a SQLAlchemy URL (SQLite file or PostgreSQL).

    ``CrmStore(url, files_dir, default_region)``; ``await start()`` runs the
    migrations; ``await close()``.
    """
