"""The contract cases of ``tests/contract/test_subscribe.py``, through ``factstr.aio``."""

from tests.contract.test_subscribe import *  # noqa: F403
