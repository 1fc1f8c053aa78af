"""The contract cases of ``tests/contract/test_live_streams.py``, through ``factstr.aio``."""

from tests.contract.test_live_streams import *  # noqa: F403
