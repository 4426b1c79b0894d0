"""The web channel's customer side: chat widget sessions, web forms, self-service (docs/webchat.md)."""
