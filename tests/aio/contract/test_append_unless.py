"""The contract cases of ``tests/contract/test_append_unless.py``, through ``factstr.aio``."""

from tests.contract.test_append_unless import *  # noqa: F403
