"""The app's default input limits, as the start-up module hands them to the QA functions."""

from utils.settings import load_settings

_DEFAULTS = load_settings(env={}, env_file=None)
PHOTO_LIMIT = _DEFAULTS.image_max_upload_bytes  # IMAGE_MAX_UPLOAD_MB
MAX_CASES = _DEFAULTS.batch_max_cases  # BATCH_MAX_CASES
