"""Channel adapters on the contact core; voice (SIP) is the one channel today."""
