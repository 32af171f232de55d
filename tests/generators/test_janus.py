"""The Janus backend on a tiny random model built offline (no weights are downloaded)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
import transformers

from benchmarks.common import saved_activation_bytes
from cotimage.generators import janus
from cotimage.generators.base import SamplingConfig
from cotimage.generators.janus import (
    DECODINGS,
    DEFAULT_CFG_WEIGHT,
    PATH_ENV,
    JanusGenerator,
    JanusPolicy,
    build_random,
)

PROMPTS = ["a red circle", "two blue squares left of a big green star"]  # different lengths: left padding
GUIDED = SamplingConfig(cfg_weight=DEFAULT_CFG_WEIGHT)
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]),
]
SAMPLINGS = {
    "plain": SamplingConfig(),
    "guided": GUIDED,
    "guided-topk-temp": SamplingConfig(cfg_weight=3.0, temperature=0.7, top_k=8),
}


@pytest.fixture(scope="module")
def generator() -> JanusGenerator:
    model, processor = build_random(seed=0)
    return JanusGenerator(model=model, processor=processor)


@pytest.fixture(scope="module")
def prompts(generator):
    return generator.encode_prompts(PROMPTS)


def test_prompts_pad_on_the_left_whatever_the_tokenizer_says():
    model, processor = build_random(seed=0)
    processor.tokenizer.padding_side = "right"
    batch = JanusGenerator(model=model, processor=processor).encode_prompts(PROMPTS)
    assert not batch.mask[0, 0] and batch.mask[0, -1]


def test_shapes_and_prompt_format(generator, prompts):
    policy = generator.policy
    assert isinstance(policy, JanusPolicy)
    assert policy.num_image_tokens == 16 and policy.codebook_size == 64 and generator.image_size == 16
    assert generator.default_sampling.cfg_weight == DEFAULT_CFG_WEIGHT == 5.0
    tokenizer = generator.processor.tokenizer
    ids, mask = prompts.ids, prompts.mask
    assert ids.shape == mask.shape and mask.dtype == torch.bool and prompts.texts == tuple(PROMPTS)
    assert not mask[0, 0] and mask[0, -1] and mask[1].all()  # left padding
    short = tokenizer.convert_ids_to_tokens(ids[0][mask[0]].tolist())
    assert short[0] == tokenizer.bos_token and short[-1] == tokenizer.boi_token
    assert "".join(short[1:-1]) == "<|User|>:aredcircle<|Assistant|>:"
    # Same ids as the processor's own image-generation encoding.
    messages = [{"role": "user", "content": [{"type": "text", "text": PROMPTS[1]}]}]
    text = generator.processor.apply_chat_template(messages, add_generation_prompt=True)
    encoded = generator.processor(text=[text], generation_mode="image", return_tensors="pt")
    assert torch.equal(encoded["input_ids"][0], ids[1])


@pytest.mark.parametrize("name", list(SAMPLINGS))
def test_log_prob_matches_sampler(generator, prompts, name):
    sampling = SAMPLINGS[name]
    out = generator.policy.sample(prompts, sampling, torch.Generator().manual_seed(0))
    again = generator.policy.sample(prompts, sampling, torch.Generator().manual_seed(0))
    assert out.tokens.shape == (2, 16) and out.tokens.dtype == torch.long
    assert torch.equal(out.tokens, again.tokens)  # seeded: deterministic
    with torch.no_grad():
        scores = generator.policy.score_tokens(prompts, out.tokens, sampling)
    diff = (scores.log_probs - out.log_probs).abs().max().item()
    assert diff < 1e-4, f"{name}: max |log_prob - sampler log-prob| = {diff:.2e}"
    assert torch.isfinite(scores.log_probs).all() and (scores.entropy >= 0).all() and scores.values is None
    # A prefix scores the same as the full sequence's first tokens.
    prefix = generator.policy.log_prob(prompts, out.tokens[:, :5], sampling)
    assert torch.allclose(prefix, scores.log_probs[:, :5], atol=1e-4)


def test_guidance_changes_the_distribution(generator, prompts):
    with torch.no_grad():
        plain = generator.policy.start(prompts, SamplingConfig()).log_probs
        guided = generator.policy.start(prompts, GUIDED).log_probs
    assert plain.shape == guided.shape == (2, 64)
    assert (plain - guided).abs().max() > 1.0


def test_left_padding_does_not_change_a_prompt(generator, prompts):
    with torch.no_grad():
        batched = generator.policy.start(prompts, GUIDED).log_probs
        for row, text in enumerate(PROMPTS):
            alone = generator.policy.start(generator.encode_prompts([text]), GUIDED).log_probs
            assert torch.allclose(alone[0], batched[row], atol=1e-5)


@pytest.mark.parametrize("do_sample", [False, True])
def test_matches_transformers_generate(generator, do_sample):
    """Same tokens as ``generate(generation_mode="image")`` (CFG 5, no top-k) from the same global RNG state."""
    model, one = generator.model, generator.encode_prompts(PROMPTS[:1])
    kwargs = {"generation_mode": "image", "guidance_scale": 5, "do_sample": do_sample, "top_k": 0}
    torch.manual_seed(7)
    try:
        expected = model.generate(input_ids=one.ids, attention_mask=one.mask.long(), **kwargs)
    except TypeError as error:  # the reference itself is broken in some releases (5.17: `_prepare_static_cache`)
        pytest.skip(f"transformers {transformers.__version__}'s own Janus image generate fails: {error}")
    torch.manual_seed(7)
    if do_sample:
        tokens = generator.policy.sample(one, GUIDED).tokens
    else:
        with torch.no_grad():
            state, steps = generator.policy.start(one, GUIDED), []
            for i in range(generator.num_image_tokens):
                steps.append(state.log_probs.argmax(-1))
                if i + 1 < generator.num_image_tokens:
                    generator.policy.advance(state, steps[-1])
        tokens = torch.stack(steps, 1)
    assert torch.equal(tokens, expected)


def test_generate_and_decode(generator):
    images = generator.generate(PROMPTS, seed=0)
    assert images.dtype == np.uint8 and images.shape == (2, 16, 16, 3)
    assert np.array_equal(images, generator.generate(PROMPTS, seed=0))
    decoded = generator.decode(torch.zeros(3, 16, dtype=torch.long))
    assert decoded.dtype == np.uint8 and decoded.shape == (3, 16, 16, 3)


def test_encode_images_then_decode(generator):
    rng = np.random.default_rng(0)
    for size in (16, 24):  # native size and a resize
        images = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
        tokens = generator.encode_images(images)
        assert tokens.shape == (2, 16) and tokens.dtype == torch.long
        assert int(tokens.min()) >= 0 and int(tokens.max()) < 64
        assert generator.decode(tokens).shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="uint8"):
        generator.encode_images(np.zeros((1, 16, 16, 3), np.float32))


def test_gradients_flow_and_value_head():
    model, processor = build_random(seed=1)
    generator = JanusGenerator(model=model, processor=processor, value_head=True)
    policy, prompts = generator.policy, generator.encode_prompts(PROMPTS)
    tokens = policy.sample(prompts, GUIDED, torch.Generator().manual_seed(1)).tokens
    scores = policy.score_tokens(prompts, tokens, GUIDED)
    assert scores.values is not None and scores.values.shape == (2, 16) and torch.all(scores.values == 0)
    (scores.log_probs.sum() + scores.values.sum()).backward()
    assert policy.model.model.generation_head.vision_head.weight.grad is not None
    assert policy.value_head.out.weight.grad is not None
    state = policy.start(prompts, GUIDED)
    assert state.values.shape == (2,)
    reference = policy.frozen_reference()
    assert not reference.has_value_head and policy.has_value_head


def test_gradient_checkpointing_saves_less_and_gives_the_same_gradients():
    grads, saved = [], []
    for checkpointing in (False, True):
        model, processor = build_random(seed=2, layers=4)
        generator = JanusGenerator(model=model, processor=processor, gradient_checkpointing=checkpointing)
        policy, prompts = generator.policy.train(), generator.encode_prompts(PROMPTS)
        tokens = policy.sample(prompts, GUIDED, torch.Generator().manual_seed(2)).tokens  # sampling needs no grads
        scores, nbytes = saved_activation_bytes(policy, partial(policy.score_tokens, prompts, tokens, GUIDED))
        scores.log_probs.sum().backward()
        grads.append([p.grad for p in policy.parameters() if p.grad is not None])
        saved.append(nbytes)
    assert saved[1] < saved[0] / 2
    assert len(grads[0]) == len(grads[1]) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))
    with pytest.raises(ValueError, match="gradient_checkpointing"):
        JanusGenerator(model=model, processor=processor, gradient_checkpointing="yes")


def teacher_forced(generator: JanusGenerator, prompts, tokens: torch.Tensor, sampling: SamplingConfig):
    """Log-probs and values at every step of decoding ``tokens`` with start/advance, stacked (B, T, K), (B, T)."""
    policy = generator.policy
    with torch.no_grad():
        state = policy.start(prompts, sampling)
        log_probs, values = [state.log_probs], [state.values]
        for t in range(tokens.shape[1] - 1):
            policy.advance(state, tokens[:, t])
            log_probs.append(state.log_probs)
            values.append(state.values)
    return torch.stack(log_probs, 1), torch.stack(values, 1), state


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("decoding", ["static", "cuda-graph"])
def test_static_and_graph_decoding_match_the_dynamic_cache(device, decoding):
    model, processor = build_random(seed=0, device=device)
    dynamic = JanusGenerator(model=model, processor=processor, device=device, decoding="dynamic", value_head=True)
    other = JanusGenerator(model=model, processor=processor, device=device, decoding=decoding, value_head=True)
    with torch.no_grad():
        dynamic.policy.value_head.out.weight.normal_()  # a value head that reads the hidden state
    other.policy.value_head.load_state_dict(dynamic.policy.value_head.state_dict())
    prompts = dynamic.encode_prompts(PROMPTS)  # different lengths: left padding
    tokens = dynamic.policy.sample(prompts, GUIDED, torch.Generator(device).manual_seed(0)).tokens
    expected, expected_values, _ = teacher_forced(dynamic, prompts, tokens, GUIDED)
    got, got_values, state = teacher_forced(other, prompts, tokens, GUIDED)
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert torch.allclose(got_values, expected_values, atol=1e-4)
    assert (state.cache.graph is not None) == (device == "cuda" and decoding == "cuda-graph")
    # Replays are deterministic: the same seed samples the same image.
    with torch.no_grad():
        first, again = (other.policy.sample(prompts, GUIDED, torch.Generator(device).manual_seed(1)) for _ in "ab")
    assert torch.equal(first.tokens, again.tokens)


@pytest.mark.parametrize("decoding", ["static", "cuda-graph"])
def test_decoding_under_autograd_uses_the_dynamic_cache_so_backward_works(generator, prompts, decoding):
    policy = JanusGenerator(model=generator.model, processor=generator.processor, decoding=decoding).policy
    state = policy.start(prompts, GUIDED)
    log_probs = [state.log_probs]
    for token in range(3):
        policy.advance(state, torch.full((2,), token))
        log_probs.append(state.log_probs)
    torch.stack(log_probs).sum().backward()  # the static cache is written in place: backward cannot go through it
    assert type(state.cache).__name__ == "_DynamicDecoder"
    policy.zero_grad(set_to_none=True)


def test_static_decoding_needs_a_static_cache_that_counts_on_the_device(generator, monkeypatch):
    monkeypatch.setattr(janus, "_static_cache_counts_on_device", lambda: False)  # as in transformers 4.x
    for decoding in ("static", "cuda-graph"):
        with pytest.raises(ValueError, match=f"decoding='{decoding}' needs transformers 5's StaticCache"):
            JanusGenerator(model=generator.model, processor=generator.processor, decoding=decoding)
    assert janus.check_decoding("auto", generator.model) == "auto"


def test_auto_decoding_is_dynamic_on_the_cpu(generator, prompts):
    assert generator.policy.decoding == "auto"
    with torch.no_grad():
        assert type(generator.policy.start(prompts, SamplingConfig()).cache).__name__ == "_DynamicDecoder"


def test_bad_decoding_raises():
    model, processor = build_random(seed=0)
    with pytest.raises(ValueError, match=r"decoding='graph' must be one of \('auto', 'dynamic'"):
        JanusGenerator(model=model, processor=processor, decoding="graph")
    model.config.text_config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="decoding='static' needs an attention implementation that takes 4D masks"):
        JanusGenerator(model=model, processor=processor, decoding="static")
    assert set(DECODINGS) == {"auto", "dynamic", "static", "cuda-graph"}


@pytest.mark.parametrize("device", DEVICES)
def test_checkpointed_policy_in_training_mode_samples_as_in_eval_mode(device):
    model, processor = build_random(seed=2, layers=2, device=device)
    generator = JanusGenerator(model=model, processor=processor, device=device, gradient_checkpointing=True)
    policy, prompts = generator.policy, generator.encode_prompts(PROMPTS)
    samples = []
    for mode in (policy.eval, policy.train):
        mode()
        with torch.no_grad():
            samples.append(policy.sample(prompts, GUIDED, torch.Generator(device).manual_seed(0)))
    assert torch.equal(samples[0].tokens, samples[1].tokens)
    assert torch.allclose(samples[0].log_probs, samples[1].log_probs, atol=1e-5)
    assert policy.training and policy.model.model.language_model.training  # the mode is given back


def test_frozen_reference(generator, prompts):
    reference = generator.policy.frozen_reference()
    assert reference is not generator.policy and not reference.training and not reference.has_value_head
    assert all(not p.requires_grad for p in reference.parameters())
    assert any(p.requires_grad for p in generator.policy.parameters())
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = generator.policy.log_prob(prompts, tokens, GUIDED)
    b = reference.log_prob(prompts, tokens, GUIDED)
    assert not b.requires_grad and torch.allclose(a, b)


def test_missing_path_explains_how_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(PATH_ENV, raising=False)
    for path in (None, tmp_path / "nowhere", tmp_path):  # unset, nonexistent, a directory without a checkpoint
        with pytest.raises(FileNotFoundError, match=f"deepseek-community/Janus-Pro-1B.*{PATH_ENV}"):
            JanusGenerator(path)
    monkeypatch.setenv(PATH_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        JanusGenerator()


def test_arguments_and_the_processor_are_checked_before_the_weights_load(tmp_path, monkeypatch):
    model, processor = build_random(seed=0)
    model.save_pretrained(tmp_path)  # the weights alone, no processor files
    loads = []
    original = transformers.JanusForConditionalGeneration.from_pretrained.__func__
    monkeypatch.setattr(transformers.JanusForConditionalGeneration, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(1) or original(cls, *a, **k)))
    with pytest.raises(FileNotFoundError, match=f"holds no Janus processor.*{PATH_ENV}"):
        JanusGenerator(tmp_path)
    processor.save_pretrained(tmp_path)
    bad = [({"decoding": "graph"}, "decoding='graph' must be one of"), ({"max_prompt_tokens": 0}, "max_prompt_tokens=0"),
           ({"gradient_checkpointing": "yes"}, "gradient_checkpointing='yes'"), ({"cfg_weight": -1}, "cfg_weight=-1")]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            JanusGenerator(tmp_path, **kwargs)
    assert not loads
    JanusGenerator(tmp_path)
    assert loads == [1]


def test_bad_prompts_raise(generator):
    with pytest.raises(ValueError, match="non-empty"):
        generator.encode_prompts([])
    small = JanusGenerator(model=generator.model, processor=generator.processor, max_prompt_tokens=12)
    small.encode_prompts(["a red circle"])  # 11 tokens
    with pytest.raises(ValueError, match="max_prompt_tokens=12"):
        small.encode_prompts(["a red circle", "two blue squares left of a big green star"])


def test_bad_tokens_raise(generator, prompts):
    policy = generator.policy
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        policy.log_prob(prompts, torch.full((2, 16), 64))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        generator.decode(torch.full((1, 16), -1))
    with pytest.raises(ValueError, match="int64"):
        policy.log_prob(prompts, torch.zeros(2, 16))
    with pytest.raises(ValueError, match="shape"):
        policy.log_prob(prompts, torch.zeros(2, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        generator.decode(torch.zeros(1, 15, dtype=torch.long))
    state = policy.start(prompts, SamplingConfig())
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        policy.advance(state, torch.tensor([0, 99]))
    with pytest.raises(ValueError, match="shape"):
        policy.advance(state, torch.tensor([0, 1, 2]))
