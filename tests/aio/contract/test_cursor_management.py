"""The contract cases of ``tests/contract/test_cursor_management.py``, through ``factstr.aio``."""

from tests.contract.test_cursor_management import *  # noqa: F403
