import string

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

from cotimage import rewards
from cotimage.shapes import render

PROMPTS = ["a red circle", "two green triangles"]


@pytest.fixture(scope="module")
def tiny_pickscore(tmp_path_factory):
    """A random tiny transformers CLIPModel and a processor built offline, saved as save_pretrained writes them."""
    folder = tmp_path_factory.mktemp("pickscore")
    chars = list(string.ascii_lowercase + ",")
    vocab = {token: i for i, token in enumerate(chars + [c + "</w>" for c in chars])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    text = dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=64, bos_token_id=vocab["<|startoftext|>"],
                eos_token_id=vocab["<|endoftext|>"])
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(folder)
    return folder


def test_pickscore_is_the_scaled_cosine(tiny_pickscore):
    rm = rewards.make("pickscore", path=tiny_pickscore)
    images = np.stack([render(p, seed=0) for p in PROMPTS])
    scores = rm(images, PROMPTS)
    inputs = rm.processor(text=PROMPTS, images=list(images), return_tensors="pt", padding=True)
    with torch.no_grad():
        image = rm.model.get_image_features(pixel_values=inputs["pixel_values"])
        text = rm.model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    image, text = (getattr(x, "pooler_output", x) for x in (image, text))
    expected = rm.model.logit_scale.exp() * torch.nn.functional.cosine_similarity(image, text)
    np.testing.assert_allclose(scores, expected.numpy(), rtol=1e-4, atol=1e-4)
    assert rm.name == "pickscore" and rm.range[0] == -rm.range[1]
    np.testing.assert_array_equal(scores, rm(images, PROMPTS))


def test_a_separate_processor_directory(tiny_pickscore):
    rm = rewards.make("pickscore", path=tiny_pickscore, processor_path=tiny_pickscore)
    assert rm(render(PROMPTS[0], seed=0)[None], PROMPTS[:1]).shape == (1,)


def test_a_bfloat16_model_scores_uint8_images(tiny_pickscore):
    rm = rewards.make("pickscore", path=tiny_pickscore)
    images = np.stack([render(p, seed=0) for p in PROMPTS])
    expected = rm(images, PROMPTS)
    rm.model.to(torch.bfloat16)
    np.testing.assert_allclose(rm(images, PROMPTS), expected, atol=0.5)  # scores reach about +-s = 14


def test_an_image_three_pixels_high_is_read_channels_last(tiny_pickscore):
    rm = rewards.make("pickscore", path=tiny_pickscore)
    image = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 3), dtype=np.uint8)  # transformers would guess (C, H, W)
    inputs = rm.processor(text=PROMPTS[:1], images=list(image), return_tensors="pt", padding=True,
                          input_data_format="channels_last")
    with torch.no_grad():
        out = rm.model(**inputs)
    expected = (rm.model.logit_scale.exp() * (out.image_embeds * out.text_embeds).sum(-1)).numpy()
    np.testing.assert_allclose(rm(image, PROMPTS[:1]), expected, rtol=1e-5)


def test_a_directory_of_another_model_is_named(tiny_pickscore, tmp_path):
    BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path)
    CLIPProcessor.from_pretrained(tiny_pickscore).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="reward 'pickscore': path=.* holds no CLIPModel's weights .*tensors missing"):
        rewards.make("pickscore", path=tmp_path)


def test_a_directory_without_the_model_is_named(tmp_path):
    with pytest.raises(ValueError, match="reward 'pickscore': cannot load a CLIPModel .*save_pretrained"):
        rewards.make("pickscore", path=tmp_path)


@pytest.mark.parametrize("kwargs", [{}, {"path": "/no/such/dir"}])
def test_a_missing_model_says_how_to_provide_it(kwargs):
    with pytest.raises(FileNotFoundError, match="reward 'pickscore'.*save_pretrained.*rewards.make\\('pickscore', path="):
        rewards.make("pickscore", **kwargs)
