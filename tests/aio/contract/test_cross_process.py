"""The contract cases of ``tests/shared_backends/test_cross_process.py``, through ``factstr.aio``."""

from tests.shared_backends.test_cross_process import *  # noqa: F403
