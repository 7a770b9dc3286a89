"""Chapter 8: timing, where the time goes, the prompt cache, int8 encoder, torch.compile, the reflow student, Pareto front."""
import time

import pytest
import torch
from torch import nn

from textimg_lessons import diffusion as D, text_to_image
from textimg_lessons import faster, reflow


def test_time_call_discards_warmup_and_reports_median_of_sleeps():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.08 if len(calls) <= 2 else 0.01)  # the two warm-up calls are slow, as first calls are

    t = faster.time_call(fn, warmup=2, repeats=5, threads=1)
    assert len(calls) == 7 and t.repeats == 5 and t.threads == 1
    assert 9 <= t.median_ms < 40, t
    assert t.cpu_ms_median < 5, "sleeping uses no CPU: cpu time must be far below wall time"
    assert t.iqr_ms >= 0


def test_time_call_sets_threads_only_inside_and_rejects_bad_arguments():
    before = torch.get_num_threads()
    seen = []
    t = faster.time_call(lambda: seen.append(torch.get_num_threads()), warmup=0, repeats=2, threads=2)
    assert seen == [2, 2] and t.threads == 2
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="repeats"):
        faster.time_call(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="callable"):
        faster.time_call(42)
    with pytest.raises(ValueError, match="threads"):
        with faster.with_threads(0):
            pass


class _FakeEncoder:
    """token_states' interface (tokenize, model) with a counting 'network'."""

    max_length, device = 16, torch.device("cpu")

    def __init__(self):
        self.calls = 0

        def tokenizer(texts, **kw):
            ids = [[len(w) for w in t.split()] for t in texts]
            S = max(map(len, ids))
            batch = {"input_ids": torch.tensor([i + [0] * (S - len(i)) for i in ids]),
                     "attention_mask": torch.tensor([[1] * len(i) + [0] * (S - len(i)) for i in ids])}

            class B(dict):
                def to(self, device):
                    return self
            return B(batch)
        self.tokenizer = tokenizer

        outer = self

        class Model:
            def __call__(self, input_ids, attention_mask):
                outer.calls += 1

                class O:
                    last_hidden_state = input_ids.float()[..., None].repeat(1, 1, 3) * attention_mask[..., None]
                return O()
        self.model = Model()

    def tokenize(self, texts):
        return self.tokenizer(texts)


def test_token_state_cache_returns_identical_tensors_counts_hits_and_evicts_oldest():
    enc = _FakeEncoder()
    cache = faster.CachedTokenStates(enc, maxsize=2)
    s1, m1 = cache(["a dress", "one big shoe"])
    ref_s, ref_m = D.token_states(enc, ["a dress", "one big shoe"])
    torch.testing.assert_close(s1, ref_s)
    assert torch.equal(m1, ref_m)
    calls = enc.calls
    s2, m2 = cache(["one big shoe", "a dress", "a dress"])
    assert enc.calls == calls, "all three were cached: the network must not run"
    assert torch.equal(s2[1], s1[0]) and torch.equal(s2[2], s1[0]) and torch.equal(m2[0], m1[1])
    assert (cache.hits, cache.misses) == (3, 2)
    cache(["a bag"])  # the least recently used ("one big shoe") goes
    assert len(cache) == 2
    cache(["one big shoe"])
    assert cache.misses == 4
    with pytest.raises(ValueError, match="maxsize"):
        faster.CachedTokenStates(enc, maxsize=0)


@pytest.fixture(scope="module")
def minilm():
    from textimg_lessons.pretrained import PretrainedTextEncoder
    return PretrainedTextEncoder(disk_cache=False)


def test_int8_encoder_stays_close_to_float32_and_keeps_its_own_cache(minilm):
    texts = ["a photo of a dress", "there is a sneaker in this picture", "a handwritten seven", "a bag"]
    before = minilm.encode(texts)  # fills the float32 model's cache
    q = faster.quantize_encoder(minilm)
    cos = faster.embedding_cosine(minilm, q, texts)
    assert cos.shape == (4,) and bool((cos > 0.95).all()), cos
    assert not torch.equal(q.encode(texts), before), "the int8 copy must compute, not read float32's cache"
    assert any("quantized" in type(m).__module__ for m in q.model.modules())
    assert not any("quantized" in type(m).__module__ for m in minilm.model.modules()), "the original is unchanged"
    assert q.disk_cache is False and q.identity != minilm.identity


def test_maybe_compile_returns_a_working_module_or_a_reason():
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    compiled, seconds, reason = faster.maybe_compile(lin, x, backend="eager")
    assert reason is None and seconds > 0
    torch.testing.assert_close(compiled(x), lin(x))

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler on this machine")
    same, seconds, reason = faster.maybe_compile(nn.Linear(3, 2), x, backend=broken_backend)
    assert isinstance(same, nn.Linear) and seconds == 0.0
    assert "no compiler on this machine" in reason


class _StraightLine(nn.Module):
    """Knows the pairs: outputs exactly noise - z0 at every point of the line (1 - t) z0 + t noise."""

    def __init__(self, noise, z0):
        super().__init__()
        self.noise, self.z0 = noise, z0

    def forward(self, x, t, states, mask):
        return self.noise - self.z0


def test_reflow_loss_is_the_mse_to_the_straight_line_velocity_and_zero_for_the_exact_one():
    g = torch.Generator().manual_seed(0)
    noise, z0, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.rand(6, generator=g)
    states, mask = torch.randn(6, 3, 5, generator=g), torch.ones(6, 3)
    assert float(reflow.reflow_loss(_StraightLine(noise, z0), noise, z0, states, mask, t)) < 1e-12

    class Half(nn.Module):  # outputs half of x_t: the loss must be computed at x_t, per example's t
        def forward(self, x, t, s, m):
            return 0.5 * x
    x_t = (1 - t)[:, None] * z0 + t[:, None] * noise
    expected = ((0.5 * x_t - (noise - z0)) ** 2).mean()
    torch.testing.assert_close(reflow.reflow_loss(Half(), noise, z0, states, mask, t), expected)


def test_pareto_front_keeps_only_points_nothing_beats_on_both():
    points = [(10.0, 0.90), (2.0, 0.80), (5.0, 0.95), (3.0, 0.70), (5.0, 0.90), (1.0, 0.10), (20.0, 0.95)]
    # (10, .90) loses to (5, .95); (3, .70) to (2, .80); (5, .90) to (5, .95); (20, .95) to (5, .95)
    assert faster.pareto_front(points) == [5, 1, 2]
    assert faster.pareto_front([(1.0, 0.5)]) == [0]


def _tiny_t2i():
    torch.manual_seed(0)
    codec = D.LatentCodec(latent_dim=4, channels=8)
    model = D.Denoiser(latent_dim=4, text_dim=3, width=16, tokens=2, depth=1, heads=2)
    for p in model.parameters():
        nn.init.normal_(p, std=0.2)
    return text_to_image.TextToImage(codec, model, _FakeEncoder(), torch.randn(5, 3), torch.arange(5), "fashion_mnist")


class _Table:
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.states = torch.randn(5, 3, 3, generator=g).half()
        self.mask = torch.tensor([[1, 1, 0]] * 5)
        self.index = torch.randint(5, (2, 10), generator=g)


def test_reflow_pairs_are_the_teacher_paths_from_that_exact_noise():
    t2i, table = _tiny_t2i(), _Table()
    pairs = reflow.make_reflow_pairs(t2i, table, 7, steps=3, guidance=2.0, batch_size=4, progress=False)
    assert pairs["noise"].shape == pairs["z0"].shape == (7, 4)
    r = pairs["rows"][4:]
    # re-run the teacher from the stored noise by hand (Heun, 3 steps, guidance 2) for the second batch
    states, mask = table.states[r].float(), table.mask[r]
    m = t2i.model

    def v(z, t):
        tt = torch.full((len(z),), t)
        return D.guided_velocity(m(z, tt, states, mask), m(z, tt, states, torch.zeros_like(mask)), 2.0)
    z, ts = pairs["noise"][4:], [1.0, 2 / 3, 1 / 3, 0.0]
    with torch.no_grad():
        for i in range(3):
            dt = ts[i + 1] - ts[i]
            vz = v(z, ts[i])
            z = z + dt * (0.5 * (vz + v(z + dt * vz, ts[i + 1])) if i < 2 else vz)
    torch.testing.assert_close(pairs["z0"][4:], z, atol=1e-5, rtol=1e-4)


def test_reflow_student_learns_and_is_marked_distilled_while_the_teacher_is_unchanged():
    t2i, table = _tiny_t2i(), _Table()
    before = {k: v.clone() for k, v in t2i.model.state_dict().items()}
    pairs = reflow.make_reflow_pairs(t2i, table, 64, steps=2, progress=False)
    student, h = reflow.train_reflow_student(t2i, table, num_steps=60, pairs=pairs, batch_size=32, lr=3e-3,
                                             progress=False)
    assert student.metadata["distilled"] == "reflow" and student.metadata["guidance_baked"] == "2.0"
    assert h["loss"][-1] < h["loss"][0]
    assert all(torch.equal(before[k], v) for k, v in t2i.model.state_dict().items())
    assert student.codec is t2i.codec and student.model is not t2i.model


def test_fastest_meeting_bar_needs_few_evaluations_small_drop_and_5x_and_skips_non_diffusion():
    results = {
        "default": {"evaluations": 62, "adherence": 0.95, "ms_batch1_1t": 100.0},
        "cvae": {"evaluations": 2, "adherence": 0.95, "ms_batch1_1t": 1.0, "diffusion": False},
        "too many passes": {"evaluations": 16, "adherence": 0.95, "ms_batch1_1t": 5.0},
        "too poor": {"evaluations": 2, "adherence": 0.85, "ms_batch1_1t": 4.0},
        "not 5x": {"evaluations": 4, "adherence": 0.94, "ms_batch1_1t": 25.0},
        "ok slow": {"evaluations": 4, "adherence": 0.93, "ms_batch1_1t": 20.0},
        "ok fast": {"evaluations": 2, "adherence": 0.91, "ms_batch1_1t": 10.0},
    }
    assert faster.fastest_meeting_bar(results, "default") == "ok fast"
    del results["ok fast"], results["ok slow"]
    assert faster.fastest_meeting_bar(results, "default") is None


def test_speed_of_reports_latency_and_throughput_per_thread_count():
    seen = []

    def sample(texts, n):
        seen.append(len(texts))
        time.sleep(0.001 * len(texts))
        return torch.zeros(len(texts) * n, 1, 28, 28)

    out = faster.speed_of(sample, ["a", "b", "c"], threads_list=(1,), batch=8, warmup=0, repeats=2)
    assert set(out) == {"ms_batch1_1t", "img_s_batch_1t"}
    assert set(seen) == {1, 8}, "batch 1 and a batch of 8 prompts (repeated to fill it)"
    assert out["ms_batch1_1t"] >= 1 and 0 < out["img_s_batch_1t"] < 1000


def test_a_cold_compile_uses_an_empty_kernel_cache_and_puts_the_setting_back(monkeypatch):
    import os
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/nonexistent-before")
    seen = []

    def spying_backend(gm, example_inputs):
        seen.append(os.environ["TORCHINDUCTOR_CACHE_DIR"])
        return gm.forward

    x = torch.randn(4, 3)
    compiled, seconds, reason = faster.maybe_compile(nn.Linear(3, 2), x, backend=spying_backend)
    assert reason is None and seen and seen[0] != "/nonexistent-before" and "textimg-compile-" in seen[0]
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/nonexistent-before"
    torch._dynamo.reset()


def test_the_fastest_encoder_falls_back_to_float32_and_says_why_when_int8_is_unavailable(monkeypatch):
    def no_int8(encoder):
        raise RuntimeError("no quantised engine")
    monkeypatch.setattr(faster, "quantize_encoder", no_int8)
    sentinel = object()
    encoder, label = faster.fastest_encoder(sentinel)
    assert encoder is sentinel and "float32" in label and "no quantised engine" in label
