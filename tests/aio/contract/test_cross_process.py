"""The contract cases of ``tests/contract/test_cross_process.py``, through ``factstr.aio``."""

from tests.contract.test_cross_process import *  # noqa: F403
