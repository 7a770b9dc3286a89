"""textimg_lessons: the helper package of the course, one module per chapter topic.

config   settings from the environment (fast mode, device, offline, seeds, data dir)   chapter 0
data     MNIST / Fashion-MNIST loaders with online and offline paths                   chapter 0-1
checks   exercise check helpers with specific feedback                                 chapter 0
plots    image grids and training curves                                               chapter 1
backprop manual layers, gradient checking and the from-scratch MLP                     chapter 1
train    a training loop with a progress bar                                           chapter 2
"""
__version__ = "0.1.0"

REPO_URL = "https://github.com/textimg-lessons/textimg-lessons"

from .config import data_dir, fast_mode, get_device, offline, pick, seed_everything  # noqa: E402,F401
