import numpy as np
import pytest
import torch

from cotimage import generators
from cotimage.generators import SamplingConfig, ShapesGenerator, ShapesPolicy
from cotimage.generators.shapes import ShapesConfig, WordTokenizer

TINY = ShapesConfig(d_model=32, layers=2, heads=2, ff=64)
PROMPTS = ["a red circle to the left of a blue square", "two small crosses", "an orange triangle"]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return ShapesPolicy(TINY, value_head=True)


@pytest.fixture(scope="module")
def prompts():
    return WordTokenizer()(PROMPTS)


@pytest.mark.parametrize(
    "sampling",
    [SamplingConfig(), SamplingConfig(cfg_weight=3.0), SamplingConfig(temperature=0.7, top_k=20, cfg_weight=5.0)],
    ids=["plain", "guided", "guided-topk"],
)
def test_log_prob_equals_sampler_log_probs(tiny, prompts, sampling):
    out = tiny.sample(prompts, sampling, torch.Generator().manual_seed(0))
    assert out.tokens.shape == (3, 64) and out.tokens.dtype == torch.long
    torch.testing.assert_close(tiny.log_prob(prompts, out.tokens, sampling), out.log_probs, atol=1e-4, rtol=0)


def test_sampling_is_seeded(tiny, prompts):
    a = tiny.sample(prompts, generator=torch.Generator().manual_seed(1)).tokens
    b = tiny.sample(prompts, generator=torch.Generator().manual_seed(1)).tokens
    c = tiny.sample(prompts, generator=torch.Generator().manual_seed(2)).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_top_k_restricts_support(tiny, prompts):
    state = tiny.start(prompts, SamplingConfig(top_k=5))
    assert (state.log_probs.isfinite().sum(-1) == 5).all()


def test_step_interface_values_match_teacher_forcing(tiny, prompts):
    tokens = tiny.sample(prompts, generator=torch.Generator().manual_seed(0)).tokens
    state = tiny.start(prompts, SamplingConfig())
    values = [state.values]
    for t in range(5):
        values.append(tiny.advance(state, tokens[:, t]).values)
    scores = tiny.score_tokens(prompts, tokens, SamplingConfig())
    torch.testing.assert_close(torch.stack(values, 1), scores.values[:, :6], atol=1e-5, rtol=0)
    assert scores.entropy.shape == (3, 64) and (scores.entropy >= 0).all()


def test_frozen_reference_is_frozen_and_headless(tiny):
    reference = tiny.frozen_reference()
    assert not reference.has_value_head and not reference.training
    assert all(not p.requires_grad for p in reference.parameters())
    assert any(p.requires_grad for p in tiny.parameters())


def test_a_policy_file_without_its_architecture_loads_as_the_shipped_one(tmp_path):
    from safetensors.torch import save_file

    policy = ShapesPolicy.load()  # an agent saved before policy files carried the architecture wrote this
    save_file({k: v.contiguous() for k, v in policy.state_dict().items()}, str(tmp_path / "policy.safetensors"))
    loaded = ShapesPolicy.load(tmp_path / "policy.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), policy.state_dict().values()))
    tiny_file = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in ShapesPolicy(TINY).state_dict().items()}, str(tiny_file))
    with pytest.raises(ValueError, match="is not a shapes policy file"):  # another architecture, unnamed
        ShapesPolicy.load(tiny_file)


def test_save_load_round_trip(tiny, prompts, tmp_path):
    tiny.save(tmp_path / "p.safetensors", dtype=torch.float32)
    loaded = ShapesPolicy.load(tmp_path / "p.safetensors", value_head=True)
    tokens = tiny.sample(prompts, generator=torch.Generator().manual_seed(0)).tokens
    torch.testing.assert_close(loaded.log_prob(prompts, tokens), tiny.log_prob(prompts, tokens))


def test_shipped_generator_generates_decodable_images():
    gen = generators.load("shapes")
    assert (gen.num_image_tokens, gen.codebook_size, gen.image_size) == (64, 256, 32)
    images = gen.generate(PROMPTS, seed=0)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, gen.generate(PROMPTS, seed=0))
    tokens = gen.encode_images(images)
    np.testing.assert_array_equal(gen.decode(tokens), images)


def test_value_head_starts_at_zero():
    policy = ShapesGenerator(value_head=True).policy
    state = policy.start(WordTokenizer()(PROMPTS), SamplingConfig())
    assert torch.equal(state.values, torch.zeros(3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: WordTokenizer()([]), "non-empty list"),
        (lambda: WordTokenizer()("a red circle"), "non-empty list"),
        (lambda: WordTokenizer(max_words=3)(["a big red circle"]), "max_prompt_words=3"),
        (lambda: generators.load("dalle"), "janus-pro"),
        (lambda: generators.load(["shapes"]), r"generator=\['shapes'\] is unknown"),
        (lambda: ShapesGenerator(device=1.5), "device=1.5 must be None, a str"),  # nn.Module.to took it as a dtype
        (lambda: ShapesGenerator(device="gpu"), "device='gpu' is no torch device"),
        (lambda: ShapesGenerator(weights=""), "weights='' must be a non-empty path"),  # was the shipped weights
        (lambda: ShapesGenerator(value_head="no"), "value_head='no' must be True or False"),
        (lambda: ShapesGenerator(policy="x"), "policy='x' must be a ShapesPolicy"),
        (lambda: WordTokenizer(True), "max_words=True must be an int >= 1"),
        (lambda: generators.load("shapes").generate(["a red circle"], seed=2.5), r"seed=2.5 must be an int in \[0"),
        (lambda: generators.load("shapes").generate(["a red circle"], sampling={"temperature": 2.0}),
         "sampling=.* must be None .* or a SamplingConfig"),
        (lambda: SamplingConfig(temperature=0), "temperature"),
        (lambda: SamplingConfig(top_k=0), "top_k"),
        (lambda: SamplingConfig(cfg_weight=-1), "cfg_weight"),
        (lambda: SamplingConfig(temperature=float("inf")), r"temperature=inf must be a finite number > 0"),  # would drop top_k
        (lambda: SamplingConfig(temperature=None), "temperature=None must be a finite number"),
        (lambda: SamplingConfig(cfg_weight=1e300), r"cfg_weight=1e\+300 must be a number in \[0, 10000\]"),  # NaN in float32
        (lambda: SamplingConfig(cfg_weight="2"), "cfg_weight='2' must be a number"),
        (lambda: ShapesGenerator(policy=ShapesGenerator().policy, value_head=True), "either policy or weights"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_tokens_name_the_range(tiny, prompts):
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        tiny.log_prob(prompts, torch.full((3, 64), 256))
    with pytest.raises(ValueError, match="int64"):
        tiny.log_prob(prompts, torch.zeros(3, 64, dtype=torch.float32))
    with pytest.raises(ValueError, match="shape"):
        tiny.advance(tiny.start(prompts, SamplingConfig()), torch.zeros(2, dtype=torch.long))


def test_next_log_probs_recomputation_equals_the_cache(tiny, prompts):
    tokens = tiny.sample(prompts, generator=torch.Generator().manual_seed(0)).tokens
    sampling = SamplingConfig(cfg_weight=2.0)
    state = tiny.start(prompts, sampling)
    for t in range(4):
        tiny.advance(state, tokens[:, t])
    torch.testing.assert_close(tiny.next_log_probs(prompts, tokens[:, :4], sampling), state.log_probs, atol=1e-4, rtol=0)
    assert not tiny.next_log_probs(prompts, tokens[:, :4], sampling).requires_grad  # an acting path keeps no graph
    with pytest.raises(ValueError, match=r"shape \(3, t\) with t < 64"):
        tiny.next_log_probs(prompts, tokens, sampling)
    with pytest.raises(ValueError, match=r"got \(2, 4\)"):
        tiny.next_log_probs(prompts, tokens[:2, :4], sampling)


def test_sampling_config_takes_a_numpy_top_k_as_an_int():
    assert type(SamplingConfig(top_k=np.int64(5)).top_k) is int


def test_a_given_policy_stays_on_its_device_unless_one_is_asked(tiny, monkeypatch):
    moves = []
    monkeypatch.setattr(type(tiny), "to", lambda self, *args, **kw: moves.append(args) or self)
    assert generators.as_generator(tiny).policy is tiny and moves == []  # a CUDA policy is not pulled to the CPU
    ShapesGenerator(policy=tiny, device="cpu")
    assert moves == [("cpu",)]


def test_guidance_is_combined_in_float32():
    cond, uncond = torch.randn(4, 256).bfloat16(), torch.randn(4, 256).bfloat16()
    sampling = SamplingConfig(cfg_weight=5.0)
    expected = generators.process_logits(cond.float(), uncond.float(), sampling)
    torch.testing.assert_close(generators.process_logits(cond, uncond, sampling), expected)


@pytest.mark.parametrize("sampling", [SamplingConfig(), SamplingConfig(cfg_weight=3.0)], ids=["plain", "guided"])
def test_a_row_scores_the_same_alone_or_in_a_batch(tiny, sampling):
    """Batches share repeated prompts and drop padding slots; neither may change a row's scores."""
    texts = [PROMPTS[0], PROMPTS[2], PROMPTS[0], PROMPTS[1], PROMPTS[2]]
    batch = WordTokenizer()(texts)
    tokens = tiny.sample(batch, sampling, torch.Generator().manual_seed(0)).tokens
    together = tiny.score_tokens(batch, tokens, sampling)
    for i, text in enumerate(texts):
        alone = tiny.score_tokens(WordTokenizer()([text]), tokens[i : i + 1], sampling)
        torch.testing.assert_close(alone.log_probs[0], together.log_probs[i], atol=1e-5, rtol=0)
        torch.testing.assert_close(alone.values[0], together.values[i], atol=1e-5, rtol=0)


def test_saving_weights_never_replaces_a_file_unless_asked(tmp_path):
    (tmp_path / "mine.safetensors").write_text("the user's")
    policy = ShapesPolicy(ShapesConfig(d_model=16, layers=1, heads=2, ff=32))
    with pytest.raises(ValueError, match="mine.safetensors exists; pass overwrite=True"):
        policy.save(tmp_path / "mine.safetensors")
    assert (tmp_path / "mine.safetensors").read_text() == "the user's"
    policy.save(tmp_path / "mine.safetensors", overwrite=True)
    assert ShapesPolicy.load(tmp_path / "mine.safetensors").cfg.d_model == 16
