"""The channel-neutral contact core: ``Contact`` and its phase machine (contact.py),
``ContactCore`` (core.py) and the domain errors (errors.py). Channel adapters
(callcenter/channels/) plug into it."""
