import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from cotimage import rewards
from cotimage.rewards.clip import COMPACT_PAD, COMPACT_UNK, CompactTokenizer, OpenCLIPReward, preprocess
from cotimage.shapes import render
from cotimage.shapes.grammar import VOCABULARY

TINY = "cotimage-test-tiny-clip"
PROMPT = "a red circle to the left of a blue square"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A random tiny open_clip model (48 px input, so 32 px images get resized) saved as a state dict."""
    folder = tmp_path_factory.mktemp("open_clip")
    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 48, "patch_size": 16, "layers": 1, "width": 32, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    (folder / f"{TINY}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    path = folder / "tiny.pt"
    torch.save(model.state_dict(), path)
    hps_path = folder / "hps.pt"  # HPS releases wrap the weights in {"state_dict": ...}
    torch.save({"state_dict": model.state_dict()}, hps_path)
    return model.eval(), path, hps_path


def images_and_prompts():
    images = np.stack([render(PROMPT, seed=0), render("two green triangles", seed=1)])
    return images, [PROMPT, "two green triangles"]


def reference_cosine(model, images, prompts):
    """Cosines through open_clip's own PIL transform and tokenizer."""
    _, _, transform = open_clip.create_model_and_transforms(TINY, pretrained=None)
    pixels = torch.stack([transform(Image.fromarray(image)) for image in images])
    with torch.no_grad():
        a = model.encode_image(pixels, normalize=True)
        b = model.encode_text(open_clip.get_tokenizer(TINY)(prompts), normalize=True)
    return (a * b).sum(-1).numpy()


def test_preprocess_matches_open_clips_transform(tiny_checkpoint):
    model, _, _ = tiny_checkpoint
    images, _ = images_and_prompts()
    _, _, transform = open_clip.create_model_and_transforms(TINY, pretrained=None)
    expected = torch.stack([transform(Image.fromarray(image)) for image in images])
    got = preprocess(images, model.visual.preprocess_cfg)
    assert got.shape == expected.shape == (2, 3, 48, 48)
    # PIL's and torch's bicubic kernels differ slightly at sharp edges; the images agree closely.
    assert (got - expected).abs().mean() < 0.05


@pytest.mark.parametrize("height, width", [(51, 48), (67, 46), (46, 67)])  # crop offset 1.5; long side 69.9
def test_preprocess_rounds_non_square_images_as_open_clip_does(tiny_checkpoint, height, width):
    model, _, _ = tiny_checkpoint
    _, _, transform = open_clip.create_model_and_transforms(TINY, pretrained=None)
    rng = np.random.default_rng(0)  # a smooth image, where the two bicubic kernels agree: a pixel's shift shows
    image = np.array(Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize((width, height), Image.BILINEAR))
    got = preprocess(image[None], model.visual.preprocess_cfg)
    assert (got - transform(Image.fromarray(image))[None]).abs().mean() < 0.01


def test_preprocess_refuses_a_transform_it_does_not_do(tiny_checkpoint):
    model, _, _ = tiny_checkpoint
    images, _ = images_and_prompts()
    with pytest.raises(ValueError, match="this model's preprocess_cfg asks for .*'resize_mode': 'squash'"):
        preprocess(images, {**model.visual.preprocess_cfg, "resize_mode": "squash"})


def test_clipscore_loads_any_open_clip_checkpoint(tiny_checkpoint):
    model, path, _ = tiny_checkpoint
    rm = rewards.make("clipscore", model=TINY, checkpoint=path)
    images, prompts = images_and_prompts()
    scores = rm(images, prompts)
    assert rm.name == "clipscore" and rm.range == (0.0, 2.5)
    expected = 2.5 * np.maximum(reference_cosine(model, images, prompts), 0)
    np.testing.assert_allclose(scores, expected, atol=0.03)
    np.testing.assert_array_equal(scores, rm(images, prompts))  # deterministic


def test_hpsv2_reads_a_wrapped_checkpoint_and_reports_the_cosine(tiny_checkpoint):
    model, _, hps_path = tiny_checkpoint
    rm = rewards.make("hpsv2", checkpoint=hps_path, model=TINY)
    images, prompts = images_and_prompts()
    assert rm.name == "hpsv2" and rm.range == (-1.0, 1.0)
    np.testing.assert_allclose(rm(images, prompts), reference_cosine(model, images, prompts), atol=0.012)


@pytest.mark.parametrize("name, kwargs", [("clipscore", {}), ("hpsv2", {}), ("clipscore", {"checkpoint": "/no/such.pt"}),
                                          ("hpsv2", {"checkpoint": "/no/such.pt"})])
def test_a_missing_checkpoint_says_how_to_provide_it(name, kwargs):
    with pytest.raises(FileNotFoundError, match=f"reward '{name}'.*checkpoint.*pass rewards.make\\('{name}'"):
        rewards.make(name, **kwargs)


def test_a_file_that_is_no_checkpoint_is_named(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"reward 'clipscore': cannot load .*junk.pt as '{TINY}' weights"):
        rewards.make("clipscore", model=TINY, checkpoint=tmp_path / "junk.pt")


def test_a_bfloat16_model_scores_uint8_images(tiny_checkpoint):
    model, path, _ = tiny_checkpoint
    rm = rewards.make("clipscore", model=TINY, checkpoint=path)
    images, prompts = images_and_prompts()
    expected = rm(images, prompts)
    rm.model.to(torch.bfloat16)
    np.testing.assert_allclose(rm(images, prompts), expected, atol=0.1)


def test_an_unknown_architecture_is_named(tiny_checkpoint):
    with pytest.raises(ValueError, match="reward 'clipscore': model='ViT-Nope' is not an open_clip architecture"):
        rewards.make("clipscore", model="ViT-Nope", checkpoint=tiny_checkpoint[1])


def test_compact_tokenizer_keeps_the_grammar_and_argmax_pooling():
    tokenizer = CompactTokenizer.for_texts(list(VOCABULARY), context_length=16)
    ids = tokenizer(["a red circle", "a zebra"])
    eot = tokenizer.vocab_size - 1
    assert ids[0, 4] == eot and ids.max() == eot  # end of text keeps the highest id
    assert ids[0, 5:].eq(COMPACT_PAD).all()
    assert ids[1, 2] == COMPACT_UNK  # "zebra" is no grammar word
    with pytest.raises(ValueError, match="start- and end-of-text"):
        CompactTokenizer([320, 321], context_length=16)


def test_the_shipped_clip_prefers_the_matching_prompt():
    rm = rewards.make("clip")
    assert isinstance(rm, OpenCLIPReward) and rm.name == "clip" and rm.range == (0.0, 2.5)
    image = render(PROMPT, seed=0)
    # Another scene, not the colour swap "a blue circle to the right of a red square": like
    # CLIPScore, the shipped CLIP binds colours to shapes poorly and ties or misses such swaps.
    scores = rm(np.stack([image, image]), [PROMPT, "two green triangles above a yellow diamond"])
    assert scores[0] > scores[1]
