"""Shrinks a clinician's photo before it leaves the machine.

Orientation from EXIF is applied to the pixels, then every piece of metadata
(EXIF, GPS, XMP, comments, colour profile) is left behind: the JPEG written
here holds pixels only. JPEG input is decoded at reduced size (Pillow's draft
mode), which is what makes a 12 MP photo shrink in milliseconds.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageCms, UnidentifiedImageError

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # the app still works, only iPhone HEIC photos are refused
    HEIF_SUPPORTED = False


class _NoTagValues(logging.Filter):
    """Drops Pillow's TIFF/EXIF debug lines: they carry every tag's value, GPS position included."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


# A filter on the logger itself holds whatever level an operator (or a test) turns logging to.
logging.getLogger("PIL.TiffImagePlugin").addFilter(_NoTagValues())

_SRGB = ImageCms.createProfile("sRGB")
_GPS_IFD = 0x8825
_ORIENTATION = 0x0112


class ImageRejected(ValueError):
    """The upload cannot be used; the message is safe to show the clinician."""


@dataclass(frozen=True)
class ShrunkImage:
    """The JPEG that is sent to a provider, and what shrinking did to the original."""

    jpeg: bytes = field(repr=False)
    width: int
    height: int
    original_width: int
    original_height: int
    original_bytes: int
    original_format: str
    removed: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for the clinician, e.g. '4032×3024, 3.1 MB → 512×384, 34 KB; location data removed'."""
        line = (f"{self.original_width}×{self.original_height}, {_size(self.original_bytes)} → "
                f"{self.width}×{self.height}, {_size(len(self.jpeg))}")
        return f"{line}; {', '.join(self.removed)} removed" if self.removed else line


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    return f"{max(1, round(n / 1000))} KB"


def _found_metadata(img: Image.Image) -> tuple[str, ...]:
    found = []
    exif = img.getexif()
    if exif.get_ifd(_GPS_IFD) or _GPS_IFD in exif:
        found.append("location data")
    if any(tag != _GPS_IFD for tag in exif):
        found.append("camera data")
    if "xmp" in img.info or "XML:com.adobe.xmp" in img.info:
        found.append("XMP")
    if "comment" in img.info:
        found.append("comment")
    return tuple(found)


_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_90}


def _upright(img: Image.Image) -> Image.Image:
    """Turn the pixels as the EXIF orientation says.

    Not `ImageOps.exif_transpose`: it re-encodes the EXIF it keeps and raises (struct.error,
    AttributeError) on odd tags some phones write (Pillow #6799, #8965); the EXIF is dropped here anyway.
    """
    turn = _TURNS.get(img.getexif().get(_ORIENTATION, 1))
    return img.transpose(turn) if turn else img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB; transparency becomes white, as on a light-box."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # A plain convert clips 16-bit values at 255 (a white image); scale instead.
        img = img.point(lambda v: v * (1 / 256)).convert("L") if img.mode == "I" else \
            img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif img.mode == "F":
        img = img.convert("L")
    if img.mode == "P" and "transparency" in img.info or img.mode in ("LA", "PA", "RGBA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    # iPhones shoot in Display P3; dropping the profile without converting would dull reds.
    if not icc:
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(img, source, _SRGB, outputMode="RGB")
        return img if converted is None else converted  # None only for an in-place conversion
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img


def shrink_image(data: bytes, *, max_side: int = 512, quality: int = 70,
                 max_bytes: int = 25_000_000, max_pixels: int = 100_000_000) -> ShrunkImage:
    """Decode `data`, fix orientation, drop metadata, fit within `max_side` and encode as JPEG.

    Raises `ImageRejected` with a message for the clinician when the file is empty,
    too large, not an image, truncated, or has more than `max_pixels` pixels.
    """
    if not data:
        raise ImageRejected("The photo file is empty (0 bytes). Please choose the photo again.")
    if len(data) > max_bytes:
        raise ImageRejected(f"The photo is {_size(len(data))}; the limit is {_size(max_bytes)}. "
                            "Please send a smaller photo.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            if img.width * img.height > max_pixels:
                raise ImageRejected(f"The photo has {img.width}×{img.height} pixels, more than the "
                                    f"{max_pixels // 1_000_000} megapixels allowed. Please send a smaller photo.")
            removed = _found_metadata(img)
            icc = img.info.get("icc_profile")
            img.seek(0)  # animated GIF/WebP: the first frame is the photo
            if fmt in ("JPEG", "MPO"):  # phones write MPO (a JPEG with extra images) too
                img.draft("RGB", (max_side, max_side))
            img = _upright(img)
            original_w, original_h = _oriented_size(data, img)
            img = _to_srgb(_to_rgb(img), icc)
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
            img.info.clear()  # Pillow's JPEG writer copies a "comment" left in info into the output
            out = io.BytesIO()
            img.save(out, "JPEG", quality=quality, optimize=True)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("The photo has too many pixels to be opened safely. Please send a smaller photo.") from None
    except UnidentifiedImageError:
        raise ImageRejected("This file is not a photo the app can read (JPEG, PNG, WebP, HEIC). "
                            "Please choose the photo itself.") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("The photo file is damaged or incomplete. Please take or upload it again.") from None
    return ShrunkImage(jpeg=out.getvalue(), width=img.width, height=img.height,
                       original_width=original_w, original_height=original_h,
                       original_bytes=len(data), original_format=fmt, removed=removed)


def _oriented_size(data: bytes, transposed: Image.Image) -> tuple[int, int]:
    # Draft mode decodes at 1/2, 1/4 or 1/8 scale; report the photo's true size, upright.
    with Image.open(io.BytesIO(data)) as header:
        w, h = header.size
    if (transposed.width > transposed.height) != (w > h) and w != h:
        return h, w
    return w, h
