"""callcenter: the server — telephony, media, speech, IVR, channels, CTI, web and wiring.

This package's ``__init__`` imports nothing from third-party packages on purpose:
``python3 -m callcenter.bootstrap`` must run on a bare machine to install them.
"""

__version__ = "0.1.0"
