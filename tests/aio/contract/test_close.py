"""The contract cases of ``tests/contract/test_close.py``, through ``factstr.aio``."""

from tests.contract.test_close import *  # noqa: F403
