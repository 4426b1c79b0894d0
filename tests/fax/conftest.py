"""The fax tests use the SIP tests' server (our UA with media, optionally in worker
processes) and the whole-server rig."""

from tests.sip.conftest import server_factory  # noqa: F401 - fixture
from tests.support.rig import rig_factory  # noqa: F401 - fixture
