"""The contract cases of ``tests/contract/test_append_if.py``, through ``factstr.aio``."""

from tests.contract.test_append_if import *  # noqa: F403
