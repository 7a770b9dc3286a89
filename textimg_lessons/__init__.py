"""textimg_lessons: the helper package of the course, one module per chapter topic.

MODULE_MAP_PLACEHOLDER
"""
__version__ = "0.1.0"

REPO_URL = "https://github.com/textimg-lessons/textimg-lessons"

# The settings helpers are re-exported here for notebooks (`textimg_lessons.fast_mode()`); config imports
# torch only inside its functions, so `import textimg_lessons` stays fast for the command line.
from .config import data_dir, fast_mode, get_device, offline, pick, seed_everything  # noqa: E402,F401
