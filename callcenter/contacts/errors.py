"""Domain errors of the contact core.

The core and the channel adapters raise these; they know nothing of HTTP.
Only ``callcenter/web/`` maps them to status codes (404, 409, 503), and the
voice channel maps them to SIP responses for a REFER from an agent's phone.
"""

from __future__ import annotations


class ContactError(Exception):
    """Base of the contact core's refusals; the message is fit to show a user."""


class NotFound(ContactError):
    """The named queue, agent or contact does not exist."""


class InvalidState(ContactError):
    """The request does not fit the current state (no connected call, no wrap-up, …)."""


class IllegalTransition(InvalidState):
    """A phase change that the transition table does not allow: a bug, not a user error."""


class Invalid(ContactError):
    """The request names something the configuration does not allow (a disposition not in
    the queue's list)."""


class Unavailable(ContactError):
    """The contact center cannot serve the request now (still starting)."""
