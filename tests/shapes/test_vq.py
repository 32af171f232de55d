import numpy as np
import pytest
import torch

from cotimage import suites
from cotimage.shapes import PatchVQ, check, render
from cotimage.shapes.vq import kmeans

#: Seeds of the fresh renders; scripts/train_vq.py learns from seed 0 and tests on seed 1.
SEED = 2_000


@pytest.fixture(scope="module")
def vq() -> PatchVQ:
    return PatchVQ.load()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.stack([render("a red circle above a blue cross and two small green squares", seed) for seed in range(4)])


def test_shipped_tokenizer_sizes(vq):
    assert vq.codebook_size == 256
    assert vq.num_tokens == 64


def test_reconstructions_pass_the_checker(vq):
    records = [r for name in suites.NAMES for r in suites.load(name)]
    rng = np.random.default_rng(SEED)
    specs = [records[i].spec for i in rng.integers(len(records), size=1000)]
    reconstructions = vq.decode(vq.encode(np.stack([render(spec, rng) for spec in specs])))
    assert np.mean([check(image, spec).passed for image, spec in zip(reconstructions, specs, strict=True)]) >= 0.98


def test_numpy_in_numpy_out(vq, images):
    tokens = vq.encode(images)
    assert isinstance(tokens, np.ndarray) and tokens.shape == (4, 64) and tokens.dtype == np.int64
    decoded = vq.decode(tokens)
    assert isinstance(decoded, np.ndarray) and decoded.shape == images.shape and decoded.dtype == np.uint8


def test_tensor_in_tensor_out(vq, images):
    tokens = vq.encode(torch.from_numpy(images))
    assert isinstance(tokens, torch.Tensor) and tokens.shape == (4, 64) and tokens.dtype == torch.int64
    decoded = vq.decode(tokens)
    assert isinstance(decoded, torch.Tensor) and decoded.dtype == torch.uint8
    np.testing.assert_array_equal(decoded.numpy(), vq.decode(vq.encode(images)))


def test_a_mirrored_view_encodes_like_its_copy(vq, images):
    mirrored = images[:, :, ::-1]  # negative strides, which torch.as_tensor refuses
    np.testing.assert_array_equal(vq.encode(mirrored), vq.encode(mirrored.copy()))


def test_a_huge_unsigned_token_is_reported_as_it_is(vq):
    tokens = np.zeros((1, 64), np.uint64)
    tokens[0, 0] = 2**63 + 5
    with pytest.raises(ValueError, match=rf"got \[0, {2**63 + 5}\]"):  # not wrapped to a negative int64
        vq.decode(tokens)


@pytest.mark.parametrize("bad", [256, -1])
def test_decode_rejects_out_of_range_tokens(vq, bad):
    tokens = np.zeros((1, 64), np.int64)
    tokens[0, 5] = bad
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, 256\)"):
        vq.decode(tokens)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.uint32, np.uint64])
def test_decode_takes_any_integer_dtype(vq, images, dtype):
    tokens = vq.encode(images)
    np.testing.assert_array_equal(vq.decode(tokens.astype(dtype)), vq.decode(tokens))
    np.testing.assert_array_equal(vq.decode(torch.from_numpy(tokens).to(torch.uint8)).numpy(), vq.decode(tokens))


@pytest.mark.parametrize(
    "tokens",
    [np.zeros((1, 63), np.int64), np.zeros(64, np.int64), np.zeros((1, 64), np.float32), np.zeros((1, 64), bool)],
)
def test_decode_rejects_wrong_shape_or_dtype(vq, tokens):
    with pytest.raises(ValueError, match="tokens must be integers of shape"):
        vq.decode(tokens)


@pytest.mark.parametrize(
    "images",
    [np.zeros((1, 32, 32, 3), np.float32), np.zeros((32, 32, 3), np.uint8), np.zeros((1, 28, 28, 3), np.uint8)],
)
def test_encode_rejects_wrong_shape_or_dtype(vq, images):
    with pytest.raises(ValueError, match="images must be uint8 of shape"):
        vq.encode(images)


@pytest.mark.parametrize(("field", "value"), [("patch", 0), ("patch", -4), ("patch", 4.0), ("image_size", 0)])
def test_bad_patch_or_image_size_is_named(field, value):
    with pytest.raises(ValueError, match=f"^{field}={value!r} must be an int >= 1"):
        PatchVQ(torch.zeros(2, 48), **{field: value})


def test_save_load_round_trip(tmp_path, images):
    generator = torch.Generator().manual_seed(0)
    original = PatchVQ(torch.randint(0, 256, (16, 8 * 8 * 3), generator=generator).float(), patch=8, image_size=32)
    original.save(tmp_path / "vq.safetensors")
    with pytest.raises(ValueError, match="vq.safetensors exists; pass overwrite=True"):
        PatchVQ.load().save(tmp_path / "vq.safetensors")  # the file is kept
    with pytest.raises(ValueError, match="path=None must be a non-empty path"):
        original.save(None)
    loaded = PatchVQ.load(tmp_path / "vq.safetensors")
    assert (loaded.patch, loaded.image_size) == (8, 32)
    torch.testing.assert_close(loaded.codebook, original.codebook, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.encode(images), original.encode(images))


def test_load_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_vq.py"):
        PatchVQ.load(tmp_path / "missing.safetensors")


def test_kmeans_recovers_well_separated_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    points = (centres.repeat_interleave(50, 0) + torch.randn(200, 2, generator=generator)).contiguous()
    found = kmeans(points, 4, iterations=10, generator=generator)
    distance = torch.cdist(centres, found)
    assert distance.min(1).values.max() < 1.0  # every true centre has a found one nearby
    assert distance.argmin(1).unique().numel() == 4  # and a different one each
