"""The contract cases of ``tests/contract/test_idempotency.py``, through ``factstr.aio``."""

from tests.contract.test_idempotency import *  # noqa: F403
