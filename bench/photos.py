"""The benchmark's phone photos: a 12 MP HEIC kept between runs, and a JPEG of a typical size."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from testkit.corpus import camera_exif, encode, grainy, photo

# The 12 MP HEIC takes x265 10-15 s to encode on two cores; it is kept here between runs.
HEIC_CACHE = Path(__file__).resolve().parent / "out" / "cache" / "phone-4032x3024-grain25-q80-orient6-gps.v1.heic"


def heic_12mp(log: Callable[[str], None]) -> bytes:
    """A 12 MP HEIC as an iPhone writes it (EXIF orientation 6, GPS), from the same grainy pixels as the JPEG.

    Encoding takes x265 10-15 s, so the file is kept in bench/out/cache (git-ignored) and
    reused while it still opens as a 4032×3024 HEIF.
    """
    with contextlib.suppress(OSError, ValueError, SyntaxError):
        data = HEIC_CACHE.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "HEIF" and sorted(img.size) == [3024, 4032]:  # pillow-heif turns it upright
                return data
    log("encoding the 12 MP HEIC once (x265, 10-15 s) ...")
    data = encode(grainy(4032, 3024), "HEIF", quality=80, exif=camera_exif(6).tobytes())
    HEIC_CACHE.parent.mkdir(parents=True, exist_ok=True)
    HEIC_CACHE.write_bytes(data)
    return data


def typical_jpeg() -> bytes:
    """A 12 MP phone JPEG of a more common size (about 3.6 MB rather than the test corpus's 5.9 MB).

    JPEG decoding time grows with the file's size (its entropy-coded data), so the heavy
    corpus photo alone would not say what a typical photo costs.
    """
    return encode(photo(4032, 3024, grain=8), "JPEG", quality=90, exif=camera_exif(6).tobytes())
