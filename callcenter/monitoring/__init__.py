"""Supervisor listen / whisper / barge on connected calls (docs/recording.md)."""
