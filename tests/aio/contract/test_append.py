"""The contract cases of ``tests/contract/test_append.py``, through ``factstr.aio``."""

from tests.contract.test_append import *  # noqa: F403
