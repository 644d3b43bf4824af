"""Fixtures for serving tests live in the root conftest (served_project, token_client)."""
from tests.helpers import train_head  # noqa: F401  (re-exported for the tests here)
