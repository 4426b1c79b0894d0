"""Several ``callcenter serve`` nodes behind one SIP edge (docs/cluster.md).

``node`` names this process in every log line and metric, ``bridge`` carries the bus's
events between nodes over Redis, ``reach`` keeps /healthz's view of Redis and
PostgreSQL, ``leases`` lets a survivor close what a dead node left open, and
``Cluster`` (``cluster.py``) wires them for ``Center``.
"""
