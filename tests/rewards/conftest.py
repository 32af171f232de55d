import pytest

from cotimage import rewards


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the reward registry, so a test's registrations do not leak."""
    monkeypatch.setattr(rewards, "_REGISTRY", dict(rewards._REGISTRY))
    return rewards
