"""The channel-neutral contact core: ``Contact`` and its phase machine (contact.py),
``ContactCore`` (core.py), the seam to channel adapters (channel.py) and the
domain errors (errors.py). Channel adapters live in callcenter/channels/."""
