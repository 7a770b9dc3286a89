"""Chapter 7's generator as a product: the unknown-prompt check, generation, the shipped-weight files."""
import pytest
import torch

from textimg_lessons import text_to_image as T


def test_auroc_is_one_for_separated_scores_and_half_for_identical_ones():
    assert T.auroc(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.2])) == 1.0
    assert T.auroc(torch.tensor([0.5, 0.5]), torch.tensor([0.5])) == 0.5


# ---------------------------------------------------------------- the whole generator, tiny and fast

@pytest.fixture(scope="module")
def tiny_generator():
    from textimg_lessons.data import load_dataset
    from textimg_lessons.pretrained import PretrainedTextEncoder
    data = load_dataset("mnist", verbose=False)  # fast mode: 100 images per class
    encoder = PretrainedTextEncoder(disk_cache=False)
    t2i, history = T.train_text_to_image(data, encoder, num_steps=60, progress=False)
    return data, encoder, t2i, history


def test_training_lowers_the_flow_matching_loss(tiny_generator):
    _, _, _, history = tiny_generator
    from textimg_lessons.histories import TextToImageHistory
    assert isinstance(history, TextToImageHistory) and history.step[-1] == 60 and history.codec_seconds > 0
    assert history["loss"][-1] < 1.5  # the untrained model's loss is E|noise - z0|^2 ~ 2 per dimension


def test_generate_returns_images_in_range_and_reports_familiarity(tiny_generator):
    _, _, t2i, _ = tiny_generator
    result = t2i.generate("a small seven", n=4, steps=2)
    assert result.images.shape == (4, 1, 28, 28)
    assert 0 <= float(result.images.min()) and float(result.images.max()) <= 1
    assert result.known and result.nearest[0] == 7
    unknown = t2i.generate("一件连衣裙", n=2, steps=2)
    assert not unknown.known and unknown.familiarity < result.familiarity


def test_saved_model_loads_and_generates_the_same_images(tiny_generator, tmp_path):
    data, encoder, t2i, _ = tiny_generator
    path = T.save_model(t2i, tmp_path / "m.safetensors", {"command": "test"})
    back = T.load_model("mnist", path, encoder=encoder)
    a = t2i.generate("the digit three", n=3, steps=3, seed=1).images
    b = back.generate("the digit three", n=3, steps=3, seed=1).images
    torch.testing.assert_close(a, b, atol=2e-2, rtol=0)  # float16 storage
    assert back.metadata["command"] == "test"


def test_loading_refuses_missing_foreign_and_garbled_files(tiny_generator, tmp_path):
    _, encoder, t2i, _ = tiny_generator
    with pytest.raises(FileNotFoundError, match="rebuild"):
        T.load_model("mnist", tmp_path / "none.safetensors", encoder=encoder)
    path = T.save_model(t2i, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="not a fashion_mnist diffusion model"):
        T.load_model("fashion_mnist", path, encoder=encoder)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable"):
        T.load_model("mnist", bad, encoder=encoder)
