"""Each loss against values computed by hand on tiny tensors."""

import math

import pytest
import torch

from cotimage.agents.grpo import group_advantages, grpo_loss, k3_kl
from cotimage.agents.ppo import gae, ppo_loss
from cotimage.agents.reinforce import baseline_advantages, reinforce_loss

# Row 0: ratio 1.5 on every token, advantage +1. Row 1: ratio 0.5, advantage -1.
OLD = torch.zeros(2, 3)
NEW = torch.tensor([[math.log(1.5)] * 3, [math.log(0.5)] * 3])
ADV = torch.tensor([1.0, -1.0])


def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 0])
    adv = group_advantages(rewards, 4, "group", epsilon=0.0)
    torch.testing.assert_close(adv[:4], torch.tensor([1.5, -0.5, -0.5, -0.5]))  # mean .25, std .5
    torch.testing.assert_close(adv[4:], torch.tensor([1, 1, -1, -1]) * 0.5 / math.sqrt(1 / 3))
    torch.testing.assert_close(group_advantages(rewards, 4, "none"), torch.tensor([0.75, -0.25, -0.25, -0.25, 0.5, 0.5, -0.5, -0.5]))
    batch = group_advantages(rewards, 4, "batch", epsilon=0.0)
    torch.testing.assert_close(batch, group_advantages(rewards, 4, "none") / rewards.std())


@pytest.mark.parametrize(
    ("group_size", "scale", "message"),
    [
        (2, "std", r"^scale='std' is not allowed; choose one of \['group', 'batch', 'none'\]"),
        (1, "none", r"^group_size=1 must be an int >= 2"),
        (2.0, "none", r"^group_size=2.0 must be an int >= 2"),
        (3, "group", r"^group_size=3 must divide the number of rows, 8"),
    ],
)
def test_group_advantages_rejects_bad_arguments_by_name(group_size, scale, message):
    with pytest.raises(ValueError, match=message):
        group_advantages(torch.arange(8.0), group_size, scale)


def test_k3_kl_by_hand():
    kl = k3_kl(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]))
    assert kl.item() == pytest.approx(0.5 - math.log(0.5) - 1)
    assert k3_kl(torch.zeros(3), torch.zeros(3)).abs().max() == 0


def test_grpo_loss_clips_by_hand():
    loss, stats = grpo_loss(NEW, OLD, ADV)  # row 0: min(1.5, 1.2) = 1.2; row 1: min(-0.5, -0.8) = -0.8
    assert loss.item() == pytest.approx((-1.2 + 0.8) / 2)
    assert stats["clip_fraction"] == 1.0
    loss, _ = grpo_loss(NEW, OLD, ADV, epsilon_high=0.28)  # clip-higher
    assert loss.item() == pytest.approx((-1.28 + 0.8) / 2)


def test_grpo_loss_aggregations_by_hand():
    per_token_sum = 3 * -1.2 + 3 * 0.8
    assert grpo_loss(NEW, OLD, ADV, loss_type="bnpo")[0].item() == pytest.approx(per_token_sum / 6)
    assert grpo_loss(NEW, OLD, ADV, loss_type="dapo")[0].item() == pytest.approx(per_token_sum / 6)
    assert grpo_loss(NEW, OLD, ADV, loss_type="dr_grpo", max_tokens=6)[0].item() == pytest.approx(per_token_sum / 12)
    with pytest.raises(ValueError, match=r"^loss_type='nope' is not allowed; choose one of \['grpo'"):
        grpo_loss(NEW, OLD, ADV, loss_type="nope")
    with pytest.raises(ValueError, match=r"^importance_sampling_level='seq' is not allowed; choose one of \['token', 'sequence'\]"):
        grpo_loss(NEW, OLD, ADV, importance_sampling_level="seq")


def test_grpo_sequence_level_ratio_and_kl_by_hand():
    new = torch.tensor([[math.log(1.5), 0.0, 0.0]])
    loss, _ = grpo_loss(new, torch.zeros(1, 3), torch.tensor([1.0]), importance_sampling_level="sequence")
    assert loss.item() == pytest.approx(-(1.5 ** (1 / 3)))  # geometric mean ratio 1.145 < 1.2: unclipped
    ref = torch.full((1, 3), math.log(0.5))
    loss, stats = grpo_loss(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([0.0]), ref, beta=0.1)
    assert loss.item() == pytest.approx(0.1 * (0.5 - math.log(0.5) - 1))
    assert stats["kl"] == pytest.approx(0.5 - math.log(0.5) - 1)


def test_reinforce_baselines_by_hand():
    rewards = torch.tensor([1.0, 0, 0, 0])
    torch.testing.assert_close(baseline_advantages(rewards, "rloo", 4), torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]))
    torch.testing.assert_close(baseline_advantages(rewards, "batch"), torch.tensor([0.75, -0.25, -0.25, -0.25]))
    torch.testing.assert_close(baseline_advantages(rewards, "none"), rewards)


@pytest.mark.parametrize(
    ("baseline", "group_size", "message"),
    [
        ("mean", 2, r"^baseline='mean' is not allowed; choose one of \['none', 'batch', 'rloo'\]"),
        ("rloo", 1, r"^group_size=1 must be an int >= 2"),
        ("rloo", 3, r"^group_size=3 must divide the number of rows, 4"),
    ],
)
def test_reinforce_baselines_reject_bad_arguments_by_name(baseline, group_size, message):
    with pytest.raises(ValueError, match=message):
        baseline_advantages(torch.tensor([1.0, 0, 0, 0]), baseline, group_size)


def test_reinforce_loss_by_hand():
    log_probs = torch.full((1, 2), math.log(0.5))
    loss = reinforce_loss(log_probs, torch.tensor([2.0]), torch.tensor([[1.0, 3.0]]), ent_coef=0.1)
    assert loss.item() == pytest.approx(-2 * math.log(0.5) - 0.1 * 2.0)


def test_gae_by_hand():
    rewards, values = torch.tensor([[0.0, 0.0, 1.0]]), torch.full((1, 3), 0.5)
    adv, returns = gae(rewards, values, gamma=1.0, lam=1.0)
    torch.testing.assert_close(adv, torch.full((1, 3), 0.5))  # Monte Carlo: 1 - 0.5
    torch.testing.assert_close(returns, torch.ones(1, 3))
    adv, _ = gae(rewards, values, gamma=1.0, lam=0.0)
    torch.testing.assert_close(adv, torch.tensor([[0.0, 0.0, 0.5]]))  # one-step TD errors


def test_ppo_loss_by_hand():
    adv = torch.tensor([[1.0, -1.0]])
    values, returns = torch.tensor([[0.5, 0.0]]), torch.tensor([[1.0, 1.0]])
    loss, stats = ppo_loss(torch.zeros(1, 2), torch.zeros(1, 2), adv, values, values, returns, torch.ones(1, 2), vf_coef=0.5, ent_coef=0.1)
    value_loss = 0.5 * (0.25 + 1.0) / 2
    assert stats["value_loss"] == pytest.approx(value_loss) and stats["policy_loss"] == pytest.approx(0.0)
    assert loss.item() == pytest.approx(0.5 * value_loss - 0.1)
    clipped, _ = ppo_loss(torch.zeros(1, 2), torch.zeros(1, 2), adv, values + 1, values, returns, torch.ones(1, 2), clip_range_vf=0.1)
    # values [1.5, 1.0] vs returns 1: errors [0.25, 0]; clipped values [0.6, 0.1]: errors [0.16, 0.81]; max of each
    assert clipped.item() == pytest.approx(0.5 * 0.5 * (0.25 + 0.81) / 2)
