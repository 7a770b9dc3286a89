"""Tests for `textimg-lessons generate` (textimg_lessons.generate), using the shipped weights offline."""
import pytest
import torch
from PIL import Image

from textimg_lessons import generate
from textimg_lessons.cli import main


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "grid.png"
    out.write_bytes(b"keep me")
    assert main(["generate", "a pair of jeans", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert out.read_bytes() == b"keep me"


def test_empty_prompt_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["generate", "   ", "--out", str(out)]) == 2
    assert "prompt is empty" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(generate.GenerateError, match="empty"):
        generate.validate_prompt("")


def test_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["generate", "a cat", "--dataset", "cifar10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'cifar10'" in err and "fashion_mnist" in err
    assert not out.exists()


def test_grid_size_formula():
    assert generate.grid_size(16, 4) == (4 * 114 + 2, 4 * 114 + 2)
    assert generate.grid_size(5, 1) == (3 * 30 + 2, 2 * 30 + 2)


@pytest.mark.parametrize("dataset,prompt,n", [("fashion_mnist", "a pair of jeans", 16), ("mnist", "a thick 7", 6)])
def test_generate_writes_a_png_of_the_right_size(tmp_path, capsys, dataset, prompt, n):
    out = tmp_path / "grid.png"
    assert main(["generate", prompt, "--n", str(n), "--out", str(out), "--dataset", dataset, "--seed", "1"]) == 0
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == generate.grid_size(n, 4)
    printed = capsys.readouterr().out
    assert "the judge reads:" in printed and f"/{n}" in printed
    # --force overwrites
    assert main(["generate", prompt, "--n", "4", "--out", str(out), "--dataset", dataset, "--force"]) == 0
    with Image.open(out) as im:
        assert im.size == generate.grid_size(4, 4)


def test_generate_returns_images_and_one_reading_each():
    from textimg_lessons.data import FASHION_CLASSES
    result = generate.generate("a pair of trousers", n=12, dataset="fashion_mnist", seed=0)
    assert result["images"].shape == (12, 1, 28, 28)
    assert 0 <= float(result["images"].min()) and float(result["images"].max()) <= 1
    assert len(result["readings"]) == 12 and set(result["readings"]) <= set(FASHION_CLASSES)
    assert sum(result["counts"].values()) == 12
    again = generate.generate("a pair of trousers", n=12, dataset="fashion_mnist", seed=0)
    assert torch.equal(again["images"], result["images"])  # the seed fixes the samples
    with pytest.raises(generate.GenerateError, match="--n"):
        generate.generate("a bag", n=0)


def test_out_of_range_guidance_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["generate", "a bag", "--guidance", "50", "--out", str(out)]) == 2
    assert "--guidance must be a number between 0 and 20" in capsys.readouterr().err
    assert not out.exists()


def test_read_only_folder_is_refused_before_any_model_work(tmp_path, capsys, monkeypatch):
    import os
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("generate ran before --out was checked"))
        assert main(["generate", "a bag", "--out", str(folder / "grid.png")]) == 2
        assert "read-only" in capsys.readouterr().err
    finally:
        folder.chmod(0o700)


def test_existing_file_and_folder_as_out_are_refused_before_any_model_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("generate ran before --out was checked"))
    assert main(["generate", "a bag", "--out", str(tmp_path)]) == 2
    assert "must end in .png" in capsys.readouterr().err
    (tmp_path / "d.png").mkdir()
    assert main(["generate", "a bag", "--out", str(tmp_path / "d.png")]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["generate", "a bag", "--n", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert "--n must be between" in capsys.readouterr().err


def test_read_only_folder_is_refused_even_when_running_as_root(tmp_path, capsys, monkeypatch):
    # root can write anywhere, so the check is exercised by making the access test say "read-only"
    real_access = generate.os.access
    monkeypatch.setattr(generate.os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("generate ran before --out was checked"))
    assert main(["generate", "a bag", "--out", str(tmp_path / "grid.png")]) == 2
    assert "read-only" in capsys.readouterr().err
    assert not (tmp_path / "grid.png").exists()


def test_generate_defaults_to_the_fast_student_at_its_chosen_steps_and_reports_time_confidence_and_familiarity():
    from textimg_lessons.reflow import load_student
    result = generate.generate("a photo of a trouser", n=8, dataset="fashion_mnist")
    assert result["kind"] == "fast" and result["encoder"] == "int8 MiniLM"
    assert result["steps"] == int(load_student("fashion_mnist").metadata["recommended_steps"]) <= 8
    assert result["known"] and result["nearest"][0] == "Trouser"
    assert len(result["confidence"]) == 8 and all(0 <= c <= 1 for c in result["confidence"])
    assert result["seconds"] > 0
    assert result["counts"].most_common(1)[0][0] == "Trouser"


def test_an_unknown_prompt_is_named_as_such_with_the_nearest_classes(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["generate", "一件连衣裙", "--n", "4", "--steps", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "far from everything the model was trained on" in text and "nearest known classes" in text
    assert out.exists()
    capsys.readouterr()
    assert main(["generate", "a photo of a trouser", "--n", "4", "--steps", "2", "--out", str(tmp_path / "k.png")]) == 0
    assert "far from everything" not in capsys.readouterr().out


def test_chapter7s_model_is_still_available_with_its_own_steps_and_guidance(tmp_path, capsys):
    assert main(["generate", "a photo of a trouser", "--model", "diffusion", "--steps", "2", "--guidance", "3",
                 "--n", "4", "--out", str(tmp_path / "d.png")]) == 0
    assert "diffusion model, 2 steps" in capsys.readouterr().out


def test_guidance_for_the_fast_model_is_refused_with_what_to_do_instead(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("generate ran before the arguments were checked"))
    assert main(["generate", "a bag", "--guidance", "3", "--out", str(tmp_path / "x.png")]) == 2
    assert "--model diffusion" in capsys.readouterr().err


def test_a_missing_student_file_says_how_to_restore_it(tmp_path):
    from textimg_lessons.reflow import load_student
    with pytest.raises(FileNotFoundError, match="train reflow"):
        load_student("fashion_mnist", path=tmp_path / "reflow_fashion_mnist.safetensors")


def test_a_chapter7_model_is_not_taken_for_a_student():
    from textimg_lessons.text_to_image import shipped_model_path
    from textimg_lessons.reflow import load_student
    with pytest.raises(ValueError, match="not a reflow student"):
        load_student("fashion_mnist", path=shipped_model_path("fashion_mnist"))


def test_the_chapter6_model_is_still_available(tmp_path, capsys):
    assert main(["generate", "a photo of a trouser", "--model", "cvae", "--n", "4", "--out", str(tmp_path / "c.png")]) == 0
    assert "cvae model" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [(["--model", "gan"], "--model"), (["--steps", "0"], "--steps"),
                                           (["--steps", "1000"], "--steps")])
def test_bad_model_or_steps_are_refused_before_any_model_loads(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("generate ran before the arguments were checked"))
    assert main(["generate", "a bag", "--out", str(tmp_path / "x.png"), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_chapter6_model_passed_in_is_sampled_as_a_cvae():
    from textimg_lessons.generator_io import load_generator
    result = generate.generate("a photo of a trouser", n=4, dataset="fashion_mnist", model=load_generator("fashion_mnist"))
    assert "known" not in result and len(result["readings"]) == 4


def test_a_very_long_prompt_gets_one_plain_note_and_still_draws(tmp_path, capsys):
    prompt = "a long summer dress with " + "many little flowers and " * 120 + "a bow"
    assert main(["generate", prompt, "--n", "2", "--out", str(tmp_path / "long.png")]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert text.count("note: a prompt of") == 1 and "tokens were used" in text
    assert "indexing errors" not in text and "Traceback" not in text and "PromptTruncatedWarning" not in text
    assert (tmp_path / "long.png").exists()
