"""The contract cases of ``tests/contract/test_query.py``, through ``factstr.aio``."""

from tests.contract.test_query import *  # noqa: F403
