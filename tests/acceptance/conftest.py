"""Acceptance suites: real members with real ed25519 keys, real signed hellos, the real ASGI application
in-process; their helpers live in tests/support."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "faults: stops the machine's Postgres and Redis (tests/acceptance/test_faults.py); run it as its own CI step"
    )
