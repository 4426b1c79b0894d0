"""CTI interface: REST + WebSocket for agent desktops and supervisor monitors, /metrics, /healthz."""
