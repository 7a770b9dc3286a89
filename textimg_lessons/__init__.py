"""textimg_lessons: the helper package of the course, one module per chapter topic.

module       what it holds                                                          chapter
config       settings from the environment (fast mode, device, offline, seeds)      0
data         MNIST / Fashion-MNIST loaders with online and offline paths            0
checks       exercise check helpers that say where an answer is wrong               0
doctor       the environment check ([OK]/[FAIL] per requirement)                    0
plots        image grids and training curves                                        1
backprop     manual layer gradients, the 3-2-1 worked example, a manual MLP         1
train        a training loop with a progress bar                                    2
cnn          convolution and pooling by hand, LeNet, the judge classifiers          2
metrics      Frechet distance on judge features, class coverage, diversity          3
gan          GAN losses, MLP GAN, DCGAN, spectral norm, WGAN-GP                     3
vae          autoencoder, VAE, ELBO in nats, IWAE, denoising and inpainting         4
captions     captions from labels and measured attributes, train/held-out families  5
text         tokenisers, attention, a tiny GPT, the pretrained sentence encoder     5
conditional  text-conditioned VAE, prompt adherence, captioner                      6
generate     `textimg-lessons generate PROMPT`                                      6
bench        `textimg-lessons bench CHAPTER`                                        all
grading      release / collect / autograde / export / feedback / check (nbgrader)   instructors
colab        the Colab badge and setup cell of every notebook                       all
"""
__version__ = "0.1.0"

REPO_URL = "https://github.com/textimg-lessons/textimg-lessons"

from .config import data_dir, fast_mode, get_device, offline, pick, seed_everything  # noqa: E402,F401
