import pytest

from benchmarks.agent_speed import parse_entry


def test_entries_name_an_agent_and_optional_config_fields():
    assert parse_entry("grpo") == ("grpo", {})
    assert parse_entry("ppo:n_epochs=1,clip_range=0.1") == ("ppo", {"n_epochs": 1, "clip_range": 0.1})
    assert parse_entry("dpo:loss_type=ipo") == ("dpo", {"loss_type": "ipo"})
    with pytest.raises(ValueError, match="'ppo:n_epochs': 'n_epochs' is not FIELD=VALUE"):
        parse_entry("ppo:n_epochs")
