"""The contract cases of ``tests/contract/test_floats.py``, through ``factstr.aio``."""

from tests.contract.test_floats import *  # noqa: F403
