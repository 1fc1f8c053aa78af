"""The contract cases of ``tests/contract/test_group_commit.py``, through ``factstr.aio``."""

from tests.contract.test_group_commit import *  # noqa: F403
