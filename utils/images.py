"""Shrinks a clinician's photo before it leaves the machine.

Orientation from EXIF is applied to the pixels, then every piece of metadata
(EXIF, GPS, XMP, comments, colour profile) is left behind: the JPEG written
here holds pixels only.

Only JPEG, PNG, WebP and HEIC/HEIF are opened: anything else (GIF, TIFF, EPS, which Pillow
would hand to Ghostscript) is refused before a decoder sees it. Memory is what decoding
costs, so it is kept down three ways: JPEG is decoded at reduced size (Pillow's draft mode,
which also makes a 12 MP photo shrink in milliseconds); other formats, which Pillow can
only decode whole, are shrunk in their own pixel mode right after decoding, before any
full-size copy is made for colour or orientation; and at most `concurrency` photos are
decoded at once in the process (`DECODES`).
"""

from __future__ import annotations

import io
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NoReturn

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

# Pillow's names for the formats a clinician's camera writes, the only openers tried. A phone's MPO (a
# JPEG with extra images) comes through the JPEG opener; HEIF exists only when pillow_heif is installed.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF") if HEIF_SUPPORTED else ("JPEG", "PNG", "WEBP")
# The IMAGE_DECODE_CONCURRENCY default (utils/settings.py): decoding is CPU-bound, two at once keep two
# cores busy while bounding memory to two photos' worth.
DEFAULT_DECODE_CONCURRENCY = 2
DEFAULT_MAX_PIXELS = 50_000_000

# Leading bytes of formats that are refused, only to name them in the message: nothing is decoded.
_NAMED_OTHERS = ((b"GIF87a", "gif"), (b"GIF89a", "gif"), (b"II*\0", "tiff"), (b"MM\0*", "tiff"), (b"BM", "bmp"),
                 (b"%!PS", "eps"), (b"\xc5\xd0\xd3\xc6", "eps"), (b"%PDF", "pdf"),
                 (b"\x00\x00\x00\x0cjP  ", "jpeg2000"), (b"\xff\x4f\xff\x51", "jpeg2000"))
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


# The English text of every refusal, by message id (the English table, domain/locales/en/messages.py, lists them with
# the engine's own; the UI says them by id in its language). A `{format}` names one of IMAGE_FORMATS, whose words
# are translated too.
MESSAGES = {
    "image.no_heic": "This server cannot read HEIC photos. Please send the photo as JPEG (on an iPhone: "
                     "Settings, Camera, Formats, Most Compatible).",
    "image.other_format": "This file is {format}, not a photo the app can read (JPEG, PNG, WebP, HEIC). "
                          "Please save the photo as JPEG and choose it again.",
    "image.not_a_photo": "This file is not a photo the app can read (JPEG, PNG, WebP, HEIC). "
                         "Please choose the photo itself.",
    "image.empty": "The photo file is empty (0 bytes). Please choose the photo again.",
    "image.too_large": "The photo is {size}; the limit is {limit}. Please send a smaller photo.",
    "image.too_many_pixels_sized": "The photo is {width}×{height} pixels ({megapixels} megapixels), too many pixels "
                                   "for the limit of {limit} megapixels. Please send a smaller photo: the phone "
                                   "camera's standard size, or resized in any photo editor.",
    "image.too_many_pixels": "The photo is {megapixels} megapixels, too many pixels for the limit of {limit} "
                             "megapixels. Please send a smaller photo: the phone camera's standard size, or resized "
                             "in any photo editor.",
    "image.too_many_pixels_over": "The photo is over {megapixels} megapixels, too many pixels for the limit of "
                                  "{limit} megapixels. Please send a smaller photo: the phone camera's standard "
                                  "size, or resized in any photo editor.",
    "image.damaged": "The photo file is damaged or incomplete. Please take or upload it again.",
}
IMAGE_FORMATS = {"gif": "a GIF image", "tiff": "a TIFF image", "bmp": "a BMP image", "eps": "a PostScript (EPS) file",
                 "pdf": "a PDF", "jpeg2000": "a JPEG 2000 image", "avif": "an AVIF image"}


class ImageRejected(ValueError):
    """The upload cannot be used; the message is safe to show the clinician.

    `code` is its id in MESSAGES and `params` its values (plain str and int), so a UI can say it in its language.
    """

    def __init__(self, code: str, **params: str | int) -> None:
        """The refusal `code` (a MESSAGES id) with the values its text names."""
        words = {**params, "format": IMAGE_FORMATS[str(params["format"])]} if "format" in params else params
        super().__init__(MESSAGES[code].format(**words))
        self.code = code
        self.params = params


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

    def sizes(self) -> str:
        """What shrinking did to the size, in any language: '4032×3024, 3.1 MB → 512×384, 34 KB'."""
        return (f"{self.original_width}×{self.original_height}, {_size(self.original_bytes)} → "
                f"{self.width}×{self.height}, {_size(len(self.jpeg))}")

    def describe(self) -> str:
        """One line in English, e.g. '4032×3024, 3.1 MB → 512×384, 34 KB; location data removed'."""
        return f"{self.sizes()}; {', '.join(self.removed)} removed" if self.removed else self.sizes()


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    return f"{max(1, round(n / 1000))} KB"


def size_text(n: int) -> str:
    """A byte count as the clinician reads it: '2.9 MB', '35 KB' (never '0 KB')."""
    return _size(n)


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


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    """Turn the pixels as the EXIF `orientation` says.

    Not `ImageOps.exif_transpose`: it re-encodes the EXIF it keeps and raises (struct.error,
    AttributeError) on odd tags some phones write (Pillow #6799, #8965); the EXIF is dropped here anyway.
    """
    turn = _TURNS.get(orientation)
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


class DecodeGate:
    """At most `limit` photos are decoded at once in this process; the others wait their turn.

    Decoding a PNG or WebP takes its whole pixel array (4 bytes a pixel, 8 with transparency), so
    the number of decodes at once is what bounds the memory photos can take. The limit is given
    with each call (from IMAGE_DECODE_CONCURRENCY) rather than fixed here, so one process-wide gate
    serves every engine; `active` and `waiting` are there to be observed.
    """

    def __init__(self) -> None:
        """An open gate: nothing decoding, nobody waiting."""
        self._turn = threading.Condition()
        self._active = 0
        self._waiting = 0

    @property
    def active(self) -> int:
        """Decodes running now."""
        return self._active

    @property
    def waiting(self) -> int:
        """Decodes waiting for a slot."""
        return self._waiting

    @contextmanager
    def slot(self, limit: int) -> Iterator[None]:
        """Hold one of `limit` slots (at least one) for the block, waiting until one is free."""
        limit = max(1, limit)
        with self._turn:
            self._waiting += 1
            try:
                self._turn.wait_for(lambda: self._active < limit)
            finally:
                self._waiting -= 1
            self._active += 1
        try:
            yield
        finally:
            with self._turn:
                self._active -= 1
                self._turn.notify_all()


DECODES = DecodeGate()


def _refuse_other_formats(data: bytes) -> NoReturn:
    """Name a format that is not on the allow-list (GIF, TIFF, EPS...) from its first bytes."""
    head = data[:16]
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS and not HEIF_SUPPORTED:
        raise ImageRejected("image.no_heic")
    others = _NAMED_OTHERS + ((head[:4] + b"ftypavif", "avif"), (head[:4] + b"ftypavis", "avif"))
    for magic, name in others:
        if head.startswith(magic):
            raise ImageRejected("image.other_format", format=name)
    raise ImageRejected("image.not_a_photo")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.0f}" if pixels >= 10_000_000 else f"{pixels / 1_000_000:.1f}".rstrip("0").rstrip(".")


def too_large(size: int, max_bytes: int) -> ImageRejected:
    """The refusal of a photo of `size` bytes over the `max_bytes` limit."""
    return ImageRejected("image.too_large", size=_size(size), limit=_size(max_bytes))


def too_many_pixels(width: int, height: int, max_pixels: int) -> ImageRejected:
    """The refusal of a `width`×`height` photo over the `max_pixels` limit, found from its header."""
    return ImageRejected("image.too_many_pixels_sized", width=width, height=height,
                         megapixels=_megapixels(width * height), limit=_megapixels(max_pixels))


def _fitted(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` fitted within max_side×max_side, never enlarged; rounded as `Image.thumbnail` rounds."""
    width, height = size
    if width <= max_side and height <= max_side:
        return size
    aspect = width / height
    if width >= height:  # whichever of floor and ceil keeps the aspect closer, as Pillow's thumbnail does
        return max_side, max(1, min(int(max_side / aspect), int(max_side / aspect) + 1,
                                    key=lambda n: abs(aspect - max_side / n) if n else float("inf")))
    return max(1, min(int(max_side * aspect), int(max_side * aspect) + 1,
                      key=lambda n: abs(aspect - n / max_side))), max_side


def _shrunk(img: Image.Image, max_side: int) -> Image.Image:
    """The decoded pixels fitted within `max_side`, in their own mode, so no later step works at full size."""
    if img.mode == "1":  # resizing keeps 1-bit images 1-bit (nearest neighbour): widen to grey first
        img = img.convert("L")
    elif img.mode in ("P", "PA"):  # palette indices cannot be averaged
        img = _to_rgb(img)
    size = _fitted(img.size, max_side)
    if size == img.size:
        return img
    if img.mode.startswith("I;16"):
        # `Image.reduce` does not take 16-bit modes; a box filter to twice the size is the same first step.
        gap = (min(img.width, size[0] * 2), min(img.height, size[1] * 2))
        return img.resize(gap, Image.Resampling.BOX).resize(size, Image.Resampling.LANCZOS)
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def shrink_image(data: bytes, *, max_side: int = 512, quality: int = 70, max_bytes: int = 25_000_000,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 concurrency: int = DEFAULT_DECODE_CONCURRENCY) -> ShrunkImage:
    """Decode `data`, fix orientation, drop metadata, fit within `max_side` and encode as JPEG.

    Raises `ImageRejected` with a message for the clinician when the file is empty, too large,
    not a JPEG, PNG, WebP or HEIC photo, truncated, or has more than `max_pixels` pixels; all of
    these are found before any pixel is decoded except truncation. The decoding itself waits
    for one of `concurrency` slots of the process-wide `DECODES` gate.
    """
    if not data:
        raise ImageRejected("image.empty")
    if len(data) > max_bytes:
        raise too_large(len(data), max_bytes)
    try:
        try:
            with warnings.catch_warnings():
                # The check below is the guard, and names the size; Pillow's warning (over 89 MP) would not.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img: Image.Image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            _refuse_other_formats(data)
        fmt = img.format or "unknown"
        width, height = img.size
        if width * height > max_pixels:
            raise too_many_pixels(width, height, max_pixels)
        with DECODES.slot(concurrency):
            removed = _found_metadata(img)  # PNG may decode here to find EXIF: inside the gate
            icc = img.info.get("icc_profile")
            orientation = img.getexif().get(_ORIENTATION, 1)
            img.seek(0)  # animated WebP: the first frame is the photo
            if fmt in ("JPEG", "MPO"):  # phones write MPO (a JPEG with extra images) too
                img.draft("RGB", (max_side, max_side))
            img = _upright(_shrunk(img, max_side), orientation)
            img = _to_srgb(_to_rgb(img), icc)
            img.info.clear()  # Pillow's JPEG writer copies a "comment" left in info into the output
            out = io.BytesIO()
            img.save(out, "JPEG", quality=quality, optimize=True)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit: refused by Image.open itself
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found[1]) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise ImageRejected("image.too_many_pixels" if found else "image.too_many_pixels_over",
                            megapixels=_megapixels(pixels), limit=_megapixels(max_pixels)) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("image.damaged") from None
    # Draft mode decodes at 1/2, 1/4 or 1/8 scale: report the photo's true size, upright.
    original_w, original_h = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return ShrunkImage(jpeg=out.getvalue(), width=img.width, height=img.height,
                       original_width=original_w, original_height=original_h,
                       original_bytes=len(data), original_format=fmt, removed=removed)
