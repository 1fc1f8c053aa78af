"""The contract cases of ``tests/contract/test_durable_subscribe.py``, through ``factstr.aio``."""

from tests.contract.test_durable_subscribe import *  # noqa: F403
