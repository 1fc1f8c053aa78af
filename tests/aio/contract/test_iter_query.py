"""The contract cases of ``tests/contract/test_iter_query.py``, through ``factstr.aio``."""

from tests.contract.test_iter_query import *  # noqa: F403
