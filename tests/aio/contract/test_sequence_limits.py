"""The contract cases of ``tests/contract/test_sequence_limits.py``, through ``factstr.aio``."""

from tests.contract.test_sequence_limits import *  # noqa: F403
