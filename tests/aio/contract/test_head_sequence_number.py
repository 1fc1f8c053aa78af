"""The contract cases of ``tests/contract/test_head_sequence_number.py``, through ``factstr.aio``."""

from tests.contract.test_head_sequence_number import *  # noqa: F403
