"""textimg_lessons: the helper package of the course, one idea per module, in chapter order.

module              what it holds                                                            chapter
config              settings from the environment (fast mode, device, offline, seeds), Recipe 0
datasets            dataset names, aliases and class names: the one normaliser               0
data                MNIST / Fashion-MNIST loaders with online and offline paths              0
checks              exercise check helpers that say where an answer is wrong                 0
selfcheck           check the notebook you have open, from inside it (Jupyter or Colab)      0
doctor              the environment check ([OK]/[FAIL] per requirement)                      0
plots               image grids, training curves, alt text for every figure in a notebook    1
backprop            manual layer gradients, the 3-2-1 worked example, a manual MLP           1
train               the one training loop (run_loop with hooks; fit for (X, y) loaders)      2
histories           what each trainer returns: named histories, readable as dicts          1-8
cnn                 convolution and pooling by hand, LeNet, the chapter's CNN recipe         2
judges              the judge classifiers: training, shipped weights, features, predictions  2
tensors             argument checks on image batches                                         3
metrics             Frechet distance, coverage, diversity, prompt adherence on judge outputs  3
gan                 GAN losses, MLP GAN, DCGAN, spectral norm, WGAN-GP                       3
vae                 autoencoder, VAE, ELBO in nats, IWAE: the model, its loss, its training   4
vae_experiments     denoising, inpainting, PSNR/SSIM, the conv-vs-MLP comparison             4
captions            captions from labels and measured attributes, train/held-out families    5
tokenisers          character, word and byte-level BPE tokenisers behind one interface       5
attention           attention from scratch: weights, causal mask, multi-head layer           5
text                the tiny GPT, its training and sampling, the tiny text encoder           5
pretrained          the pretrained sentence encoder (all-MiniLM-L6-v2), with its cache       5
encoders            the TextEncoder protocol, the one-hot (label lookup) encoder             6
conditional         the text-conditioned VAE: FiLM, projection, training, sampling           6
adherence           adherence per caption family, attribute adherence, quality report        6
encoder_comparison  the chapter's experiment: one generator per text encoder                 6
captioner           image -> caption with the tiny GPT, the prompt -> image -> caption cycle  6
generator_io        the shipped generators: save, load, rebuild                              6
vocabulary          chapter 7's training vocabulary: several names per class, plurals        7
diffusion           flow matching in a VAE latent, cross-attention to token states, samplers 7
text_to_image       chapter 7's generator as a product: prompt -> images, unknown prompts,   7
                    the shipped weights (save, load, rebuild)
generation_metrics  adherence (forced and confident), Frechet distance, diversity of any generator 7
weights             weight files: safetensors with metadata, written safely, read with clear errors 2, 6, 7
faster              timing, where the time goes, prompt cache, int8 encoder, torch.compile,  8
                    configurations against a quality bar, the Pareto front
reflow              the distilled few-step student (rectified-flow reflow), the shipped one  8
generate            `textimg-lessons generate PROMPT` (the reflow student by default)        6, 7, 8
train_command       `textimg-lessons train judges|generators|diffusion|reflow`               2, 6, 7, 8
bench/              `textimg-lessons bench CHAPTER`: one file per chapter, a registry        all
cli                 the `textimg-lessons` command (every subcommand from a light module)     all
grading             release / collect / autograde / export / feedback / check (nbgrader)     instructors
colab               the Colab badge and setup cell of every notebook                         all
"""
__version__ = "0.1.0"

REPO_URL = "https://github.com/textimg-lessons/textimg-lessons"

# The settings helpers are re-exported here for notebooks (`textimg_lessons.fast_mode()`); config imports
# torch only inside its functions, so `import textimg_lessons` stays fast for the command line.
from .config import data_dir, fast_mode, get_device, offline, pick, seed_everything  # noqa: E402,F401


def _figures_with_alt_text() -> None:
    """Inside a notebook, every figure gets alt text (plots.enable_figure_alt_text); nothing elsewhere."""
    import sys
    if "IPython" not in sys.modules:  # not in IPython: do not import it (or matplotlib) for the command line
        return
    from IPython import get_ipython
    shell = get_ipython()
    if shell is not None and getattr(shell, "display_formatter", None) is not None:
        from .plots import enable_figure_alt_text
        enable_figure_alt_text(shell)


_figures_with_alt_text()
