"""The email channel: SMTP and IMAP intake, parsing, threading, the outbound queue (docs/email.md)."""
