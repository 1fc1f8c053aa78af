"""The contract cases of ``tests/contract/test_durable_streams.py``, through ``factstr.aio``."""

from tests.contract.test_durable_streams import *  # noqa: F403
