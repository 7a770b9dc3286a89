"""Tests for chapter 6's text-to-image modules (conditional, encoders, adherence, captioner, generator_io), fast mode."""
import pytest
import torch
from torch import nn

from textimg_lessons import (adherence, captioner, captions, conditional, encoders, generator_io, metrics,
                             pretrained, text, tokenisers)


class FakeJudge(nn.Module):
    """A 'judge' that reads the class from the mean brightness: class = round(mean * 9)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        cls = (x.mean(dim=(1, 2, 3)) * 9).round().long()
        return nn.functional.one_hot(cls, 10).float() + 0 * self.dummy


def test_film_shapes_identity_at_init_and_modulation():
    film = conditional.FiLM(cond_dim=8, num_features=5)
    h = torch.randn(3, 5, 14, 14)
    c = torch.randn(3, 8)
    torch.testing.assert_close(film(h, c), h)  # zero-initialised: the identity
    with torch.no_grad():
        film.to_gamma_beta.bias[:5] = 1.0   # gamma = 1 => scale 2
        film.to_gamma_beta.bias[5:] = 0.5   # beta = 0.5
    torch.testing.assert_close(film(h, c), 2 * h + 0.5)
    assert film(torch.randn(3, 5), c).shape == (3, 5)
    with pytest.raises(ValueError, match="h must be"):
        film(torch.randn(3, 4, 14, 14), c)
    with pytest.raises(ValueError, match="c must be"):
        film(h, torch.randn(2, 8))


def test_projection_and_cvae_shapes():
    model = conditional.ConditionalVAE(text_dim=384)
    x = torch.rand(4, 1, 28, 28)
    e = torch.randn(4, 384)
    logits, mu, logvar = model(x, e)
    assert logits.shape == (4, 1, 28, 28)
    assert mu.shape == logvar.shape == (4, conditional.RECIPE["latent_dim"])
    assert model.condition(e).shape == (4, conditional.RECIPE["cond_dim"])
    with pytest.raises(ValueError, match="text embeddings must be"):
        model(x, torch.randn(4, 10))
    concat_only = conditional.ConditionalVAE(text_dim=10, film=False)
    assert concat_only.film is None
    assert concat_only(x, torch.randn(4, 10))[0].shape == (4, 1, 28, 28)


def test_condition_changes_the_decoded_image():
    model = conditional.ConditionalVAE(text_dim=10)
    with torch.no_grad():
        model.film.to_gamma_beta.weight.normal_()
    z = torch.zeros(2, model.latent_dim)
    c = model.condition(torch.eye(10)[:2])
    out = model.decode(z, c)
    assert not torch.allclose(out[0], out[1])


def test_sample_shapes_grouping_and_seed():
    model = conditional.ConditionalVAE(text_dim=10)
    e = torch.eye(10)[:3]
    a = conditional.sample(model, e, 5, torch.Generator().manual_seed(0))
    b = conditional.sample(model, e, 5, torch.Generator().manual_seed(0))
    assert a.shape == (15, 1, 28, 28) and 0 <= float(a.min()) and float(a.max()) <= 1
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="n_per_prompt"):
        conditional.sample(model, e, 0)
    with pytest.raises(ValueError, match="non-empty"):
        conditional.sample(model, torch.zeros(0, 10))


def test_guidance_interpolates_between_unconditional_and_conditional_logits():
    torch.manual_seed(0)
    model = conditional.ConditionalVAE(text_dim=10).eval()
    with torch.no_grad():
        model.film.to_gamma_beta.weight.normal_()  # make the condition matter
    e = torch.eye(10)[:2]
    plain = conditional.sample(model, e, 3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(conditional.sample(model, e, 3, torch.Generator().manual_seed(1), guidance=1.0), plain)
    # w = 0 ignores the prompt: both prompts give the image of the zero ("no prompt") embedding
    w0 = conditional.sample(model, e, 3, torch.Generator().manual_seed(1), guidance=0.0)
    z = torch.randn(6, model.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        u = model.decode(z, model.condition(torch.zeros(6, 10)))
        c = model.decode(z, model.condition(e.repeat_interleave(3, 0)))
    torch.testing.assert_close(w0, torch.sigmoid(u))
    w3 = conditional.sample(model, e, 3, torch.Generator().manual_seed(1), guidance=3.0)
    torch.testing.assert_close(w3, torch.sigmoid(u + 3 * (c - u)))
    assert not torch.allclose(w3, plain)
    for bad in (-1, 100, "2"):
        with pytest.raises(ValueError, match="guidance"):
            conditional.sample(model, e, 1, guidance=bad)


def test_prompt_adherence_on_a_fake_judge_hand_computed():
    # images of mean 0, 1/9, 2/9, 3/9: the fake judge reads classes 0, 1, 2, 3
    images = torch.stack([torch.full((1, 28, 28), k / 9) for k in range(4)])
    requested = torch.tensor([0, 1, 5, 3])  # three of four right
    assert metrics.prompt_adherence(FakeJudge(), images, requested) == pytest.approx(0.75)
    assert metrics.prompt_adherence(FakeJudge(), images, torch.tensor([9, 9, 9, 9])) == 0.0
    with pytest.raises(ValueError, match="one class per image"):
        metrics.prompt_adherence(FakeJudge(), images, torch.tensor([0, 1]))


def test_confusion_matrix_counts():
    conf = metrics.confusion_matrix(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1]), num_classes=3)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_label_lookup_reads_training_words_only():
    enc = encoders.LabelLookupEncoder("fashion_mnist")
    assert enc.read("a photo of a t-shirt") == 0       # not "shirt" (6)
    assert enc.read("a large shirt") == 6
    assert enc.read("an ankle boot") == 9
    assert enc.read("a photo of a running shoe") == -1  # a held-out synonym is unknown to a label lookup
    out = enc.encode(["a sneaker", "a purse"])
    assert out.shape == (2, 10) and out[0, 7] == 1 and out[1].sum() == 0
    mnist = encoders.LabelLookupEncoder("mnist")
    assert mnist.read("the digit seven") == 7 and mnist.read("the digit 7") == -1
    with pytest.raises(ValueError, match="empty"):
        enc.encode([""])
    with pytest.raises(ValueError, match="unknown dataset"):
        encoders.LabelLookupEncoder("cifar")


def test_caption_accuracy_and_errors():
    assert captioner.caption_accuracy(["a small sneaker", "a bag", "a tee"], [7, 8, 0], "fashion_mnist") == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one caption per label"):
        captioner.caption_accuracy(["a bag"], [1, 2], "fashion_mnist")


def test_make_encoder_rejects_unknown_kind():
    with pytest.raises(ValueError, match="Unknown encoder"):
        encoders.make_encoder("clip", "mnist")


def test_fast_training_with_one_hot_labels_beats_chance():
    from textimg_lessons.judges import load_judge
    from textimg_lessons.data import load_mnist
    data = load_mnist(verbose=False)
    judge = load_judge("mnist")
    enc = encoders.LabelLookupEncoder("mnist")
    # z_drop=0.8: most images are decoded from a prior z, so the class must come from the label (learns fast)
    model, history = conditional.train_conditional(data, enc, judge, num_steps=300, eval_every=100, z_drop=0.8, lr=3e-3,
                                         progress=False)
    assert history["step"] == [100, 200, 300]
    assert len(history["adherence"]) == 3 and history["train_seconds"] > 0
    report = adherence.adherence_report(model, enc, judge, "mnist", n_per_prompt=4, families=("train",))
    assert report["train"]["adherence"] > 0.3, report["train"]["adherence"]  # chance is 0.1
    assert report["train"]["confusion"].sum() == 30 * 4


def test_train_conditional_rejects_bad_settings():
    from textimg_lessons.data import load_mnist
    data = load_mnist(verbose=False)
    enc = encoders.LabelLookupEncoder("mnist")
    with pytest.raises(ValueError, match="num_steps"):
        conditional.train_conditional(data, enc, num_steps=0, progress=False)
    with pytest.raises(ValueError, match="cond_drop"):
        conditional.train_conditional(data, enc, num_steps=1, cond_drop=1.0, progress=False)


def test_save_and_load_generator_roundtrip(tmp_path):
    model = conditional.ConditionalVAE(text_dim=10).eval()
    path = generator_io.save_generator(model, tmp_path / "g.safetensors", "mnist", "one-hot")
    loaded = generator_io.load_generator("mnist", path, device="cpu")
    z, e = torch.randn(3, model.latent_dim), torch.eye(10)[:3]
    torch.testing.assert_close(loaded.decode(z, loaded.condition(e)), model.decode(z, model.condition(e)),
                               atol=2e-2, rtol=1e-2)  # stored as float16
    with pytest.raises(ValueError, match="not a fashion_mnist generator"):
        generator_io.load_generator("fashion_mnist", path)
    with pytest.raises(FileNotFoundError, match="train generators"):
        generator_io.load_generator("mnist", tmp_path / "missing.safetensors")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:200])  # an interrupted copy: a clear error, not safetensors' own
    with pytest.raises(ValueError, match="cut.safetensors is not a readable safetensors file"):
        generator_io.load_generator("mnist", truncated)


def test_shipped_generators_are_small():
    total = 0
    for ds in captions.DATASETS:
        p = generator_io.shipped_generator_path(ds)
        assert p.exists(), f"{p.name} is missing"
        assert p.stat().st_size < 2_000_000
        total += p.stat().st_size
    assert total < 5_000_000


def test_every_encoder_declares_the_text_encoder_interface():
    tiny = text.TinyTextEncoder(text.TinyGPT(50, d_model=16, n_layers=1, n_heads=2), tokenisers.CharTokenizer(["ab"]))
    minilm = pretrained.PretrainedTextEncoder(disk_cache=False)
    for enc in (encoders.LabelLookupEncoder("mnist"), tiny, minilm):
        assert isinstance(enc, encoders.TextEncoder)
        assert isinstance(enc.name, str) and enc.encode(["a seven"]).shape == (1, enc.dim)
    assert not isinstance(object(), encoders.TextEncoder)


def test_film_decode_equals_the_decoder_forward_with_film_inserted_by_hand():
    torch.manual_seed(0)
    model = conditional.ConditionalVAE(text_dim=10).eval()
    torch.nn.init.normal_(model.film.to_gamma_beta.weight)  # a fresh FiLM is the identity: make it act
    z, c = torch.randn(5, model.latent_dim), torch.randn(5, model.cond_dim)
    d = model.decoder
    h = d.fc(torch.cat([z, c], dim=1)).view(-1, 2 * d.channels, 7, 7)
    up, norm, relu, to_pixels = d.deconv
    by_hand = to_pixels(relu(model.film(norm(up(h)), c))) + d.pixel_bias
    assert torch.equal(model.decode(z, c), by_hand)
    assert not torch.equal(model.decode(z, c), d(z, c))  # without FiLM the output differs


def test_shipped_generators_load_bit_identically():
    from safetensors import safe_open
    for ds in captions.DATASETS:
        path = generator_io.shipped_generator_path(ds)
        model = generator_io.load_generator(ds, device="cpu")
        state = model.state_dict()
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                stored = f.get_tensor(key)
                assert torch.equal(state[key], stored.float() if stored.is_floating_point() else stored), key
        assert model.metadata["dataset"] == ds


def test_captioner_logits_are_the_gpt_run_on_prefix_and_tokens():
    gpt = text.TinyGPT(30, d_model=16, n_layers=1, n_heads=2, block_size=8).eval()
    cap = captioner.ImageCaptioner(gpt, tokenisers.CharTokenizer(["abc"]), feature_dim=4).eval()
    feats, ids = torch.randn(2, 4), torch.randint(0, 30, (2, 5))
    x = torch.cat([cap.prefix(feats)[:, None], gpt.tok_emb(ids)], dim=1)
    x = x + gpt.pos_emb(torch.arange(6))
    for block in gpt.blocks:
        x = block(x)
    assert torch.equal(cap.logits(feats, ids), gpt.head(gpt.ln_f(x)))
    with pytest.raises(ValueError, match="block_size"):
        cap.logits(feats, torch.zeros(2, 8, dtype=torch.long))


# ---------------------------------------------------------------- the from-scratch encoder, confidence, seeds

def test_scratch_encoder_reads_known_words_and_skips_unknown_ones():
    enc = encoders.ScratchTextEncoder.for_dataset("fashion_mnist")
    assert {"t-shirt", "sneaker", "photo", "large"} <= set(enc.index)
    assert "purse" not in enc.index and "jeans" not in enc.index
    e = enc.encode(["a photo of a sneaker", "A PHOTO of a Sneaker!", "purse handbag", "a photo of a sandal"])
    assert e.shape == (4, 64)
    torch.testing.assert_close(e[0], e[1])  # case and punctuation do not matter
    assert e[2].abs().sum() == 0  # only unseen words: the zero vector, the "no prompt" of condition dropout
    torch.testing.assert_close(e[[0, 3]].norm(dim=1), torch.ones(2))
    assert not torch.allclose(e[0], e[3])  # one word different, a different vector
    # the same seed gives the same encoder; another seed a different one
    torch.testing.assert_close(encoders.ScratchTextEncoder.for_dataset("fashion_mnist").encode(["a bag"]),
                               enc.encode(["a bag"]))
    assert not torch.allclose(encoders.ScratchTextEncoder.for_dataset("fashion_mnist", seed=1).encode(["a bag"]),
                              enc.encode(["a bag"]))
    assert isinstance(enc, encoders.TextEncoder) and encoders.make_encoder("scratch", "mnist").dim == 64
    with pytest.raises(ValueError, match="vocabulary is empty"):
        encoders.ScratchTextEncoder([])
    with pytest.raises(ValueError, match="empty"):
        enc.encode(["   "])


def test_scratch_encoder_is_trained_end_to_end_and_cannot_be_reused():
    from textimg_lessons.data import load_mnist
    data = load_mnist(verbose=False)
    enc = encoders.ScratchTextEncoder.for_dataset("mnist")
    before = enc.encode(["a seven", "a two"])
    untouched = enc.encode(["a 7"])  # "7" is not a training word: only "a" is read
    model, _ = conditional.train_conditional(data, enc, None, num_steps=30, progress=False)
    after = enc.encode(["a seven", "a two"])
    assert (after - before).abs().max() > 1e-3  # the generator's loss moved the word vectors
    assert enc.trained_steps == 30 and not enc.training
    assert enc.embedding.weight[0].abs().sum() == 0  # the padding / unknown row stays zero
    assert untouched.shape == (1, 64)
    images = conditional.sample(model, enc.encode(["a seven"]), 2, torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="already trained"):
        conditional.train_conditional(data, enc, None, num_steps=1, progress=False)


class SureOrNotJudge(nn.Module):
    """Class = round(mean * 9), as FakeJudge, but only sure (probability ~1) for images brighter than 0.5."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # the judge helpers read the device from a parameter

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        logits = nn.functional.one_hot((m * 9).round().long(), 10).float()
        return logits * torch.where(m > 0.5, 20.0, 0.5)[:, None]  # 0.5: softmax spreads, top p < 0.5


class ConstantModel(nn.Module):
    """A 'generator' whose images have the brightness that its embedding's first number says."""

    latent_dim = 1

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def condition(self, e):
        return e[:, :1]

    def decode(self, z, c):
        return torch.logit(c.clamp(1e-4, 1 - 1e-4)).view(-1, 1, 1, 1).expand(-1, 1, 28, 28) + 0 * z.sum()


def test_adherence_report_separates_confident_from_forced_readings(monkeypatch):
    texts = ["p7", "p2"]
    monkeypatch.setattr(captions, "prompt_set", lambda dataset, family: (texts, torch.tensor([7, 2])))

    class Enc:
        def encode(self, t):  # "p7" -> brightness 7/9 (sure), "p2" -> 2/9 (right class, but unsure)
            return torch.tensor([[int(s[1]) / 9] for s in t])
    rep = adherence.adherence_report(ConstantModel(), Enc(), SureOrNotJudge(), "mnist", 3, families=("train",),
                                     guidance=1.0)["train"]
    assert rep["adherence"] == pytest.approx(1.0)      # a forced choice: both prompts read as asked
    assert rep["confident"] == pytest.approx(0.5)      # only the bright one with p >= 0.5
    assert rep["unreadable"] == pytest.approx(0.5)


def test_seed_spread_statistics_and_record_parsing():
    from textimg_lessons import encoder_comparison as ec
    st = ec.spread_stats([1.0, 2.0, 3.0])
    assert st["mean"] == 2.0 and st["sd"] == pytest.approx(1.0) and (st["min"], st["max"], st["n"]) == (1.0, 3.0, 3)
    with pytest.raises(ValueError, match="no values"):
        ec.spread_stats([])
    report = {"results": [
        {"metric": "onehot: frechet, seed 0", "value": 60.0, "dataset": "mnist"},
        {"metric": "onehot: frechet, seed 1", "value": 70.0, "dataset": "mnist"},
        {"metric": "onehot: Frechet distance, mean over 2 seeds", "value": 65.0, "dataset": "mnist"},
        {"metric": "onehot: not_a_metric, seed 0", "value": 1.0, "dataset": "mnist"}]}
    assert ec.seed_record_rows(report) == {("mnist", "onehot", "frechet"): [60.0, 70.0]}
    with pytest.raises(ValueError, match="not the JSON"):
        ec.seed_record_rows({"results": [{"metric": "steps", "value": 1, "dataset": "mnist"}]})
    with pytest.raises(ValueError, match="at least 2 different seeds"):
        ec.seed_spread(None, None, dict, seeds=(0, 0))


def test_shipped_seed_record_covers_every_encoder_metric_and_seed():
    from textimg_lessons import encoder_comparison as ec
    record = ec.load_seed_record()
    assert record["chapter"] == "06_seeds" and record["mode"] == "full"
    values = ec.seed_record_rows(record)
    for ds in ("fashion_mnist", "mnist"):
        for kind in ("onehot", "scratch", "pretrained"):
            for metric in ec.SPREAD_METRICS:
                v = values[(ds, kind, metric)]
                assert len(v) == 3, (ds, kind, metric)
                assert all(0 <= x <= 1 for x in v) if metric.startswith(("adh", "conf")) else all(x > 0 for x in v)
