"""Awkward image files, made at test time: nothing binary is committed, nothing downloaded.

Each generator returns the file's bytes. The photos carry a coloured marker in the
top-left corner of their *stored* pixels, so a test can tell where EXIF orientation
moved it.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache, lru_cache

from PIL import Image, ImageChops, ImageDraw, PngImagePlugin

MARKER = (220, 30, 30)  # red block in the stored top-left corner; the rest is bluish

# EXIF tag numbers used below.
ORIENTATION, MAKE, MODEL, DATETIME, GPS_IFD = 0x0112, 0x010F, 0x0110, 0x0132, 0x8825


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def photo(width: int, height: int, *, grain: float = 0.0) -> Image.Image:
    """A cheap, photo-like RGB image: a blue field with a gradient and a red top-left marker.

    `grain` adds sensor-like noise, which makes the JPEG as heavy as a real phone photo.
    """
    ramp = Image.linear_gradient("L").resize((width, height))
    bands = [ramp.point(lambda v: 40 + v // 8), ramp.point(lambda v: 110 - v // 8),
             Image.new("L", (width, height), 200)]
    if grain:
        noise = Image.effect_noise((width, height), grain)
        bands = [ImageChops.add(band, noise, offset=-128) for band in bands]
    img = Image.merge("RGB", bands)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width // 4, height // 4), fill=MARKER)
    draw.ellipse((width // 2, height // 2, width // 2 + width // 5, height // 2 + height // 5), fill=(240, 220, 180))
    return img


def camera_exif(orientation: int, *, gps: bool = True) -> Image.Exif:
    """EXIF as a phone writes it: orientation, make and model, a date and (optionally) a GPS position."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Apple"
    exif[MODEL] = "iPhone 15 Pro"
    exif[DATETIME] = "2026:11:20 10:42:07"
    if gps:
        ifd = exif.get_ifd(GPS_IFD)
        ifd[1] = "N"
        ifd[2] = (37.0, 33.0, 59.88)
        ifd[3] = "E"
        ifd[4] = (126.0, 58.0, 40.2)
    return exif


@lru_cache(maxsize=2)
def grainy(width: int, height: int) -> Image.Image:
    return photo(width, height, grain=25)


@cache
def phone_jpeg(orientation: int = 6, width: int = 4032, height: int = 3024, *, gps: bool = True) -> bytes:
    """A 12 MP landscape-stored JPEG whose EXIF says how to turn it; with GPS and camera tags."""
    return encode(grainy(width, height), "JPEG", quality=90,
                 exif=camera_exif(orientation, gps=gps).tobytes())


@cache
def plain_jpeg(width: int = 800, height: int = 600, quality: int = 90) -> bytes:
    return encode(photo(width, height), "JPEG", quality=quality)


def progressive_jpeg(width: int = 800, height: int = 600) -> bytes:
    return encode(photo(width, height), "JPEG", quality=90, progressive=True)


def mpo(width: int = 1600, height: int = 1200, orientation: int = 6) -> bytes:
    """A multi-picture JPEG (MPO) as recent phones write it: the photo plus a second, smaller image."""
    first = photo(width, height)
    return encode(first, "MPO", save_all=True, append_images=[photo(width // 4, height // 4)],
                 exif=camera_exif(orientation, gps=False).tobytes())


def jpeg_with_text_metadata(width: int = 300, height: int = 200) -> bytes:
    """A JPEG carrying an XMP packet and a comment that both name the patient."""
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description dc:title="PATIENT-HONG-GILDONG" xmlns:dc="http://purl.org/dc/elements/1.1/"/>'
           b"</rdf:RDF></x:xmpmeta>")
    return encode(photo(width, height), "JPEG", quality=90, xmp=xmp, comment=b"PATIENT-HONG-GILDONG 010-1234-5678")


def png_with_text_metadata(width: int = 300, height: int = 200) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "PATIENT-HONG-GILDONG")
    info.add_text("Description", "PATIENT-HONG-GILDONG")
    return encode(photo(width, height), "PNG", pnginfo=info)


def gif_with_comment(width: int = 120, height: int = 90) -> bytes:
    return encode(photo(width, height).convert("P"), "GIF", comment=b"PATIENT-HONG-GILDONG")


def cmyk_jpeg(width: int = 400, height: int = 300, colour=(0, 255, 255, 0)) -> bytes:
    """A CMYK JPEG (print workflows, some scanners); the default ink is pure red."""
    return encode(Image.new("CMYK", (width, height), colour), "JPEG", quality=95)


def grey16_png(width: int = 256, height: int = 128, value: int = 32768) -> bytes:
    """A 16-bit greyscale PNG (mode I;16), flat at `value` out of 65535 (default: mid-grey)."""
    return encode(Image.new("I;16", (width, height), value), "PNG")


def grey16_ramp_png(width: int = 256, height: int = 16) -> bytes:
    """A 16-bit greyscale ramp from black (left) to white (right)."""
    img = Image.new("I;16", (width, height))
    img.putdata([x * 65535 // (width - 1) for _ in range(height) for x in range(width)])
    return encode(img, "PNG")


def palette_png_with_transparency(width: int = 200, height: int = 100) -> bytes:
    """A palette PNG: left half transparent (index 0), right half opaque red (index 1)."""
    img = Image.new("P", (width, height), 0)
    img.putpalette([0, 0, 0, 220, 30, 30] + [0] * (256 * 3 - 6))
    ImageDraw.Draw(img).rectangle((width // 2, 0, width, height), fill=1)
    return encode(img, "PNG", transparency=0)


def rgba_png(width: int = 200, height: int = 100) -> bytes:
    """Left half fully transparent black, right half opaque red."""
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((width // 2, 0, width, height), fill=(*MARKER, 255))
    return encode(img, "PNG")


def la_png(width: int = 200, height: int = 100) -> bytes:
    """Greyscale with alpha: left half transparent black, right half opaque dark grey (60)."""
    img = Image.new("LA", (width, height), (0, 0))
    ImageDraw.Draw(img).rectangle((width // 2, 0, width, height), fill=(60, 255))
    return encode(img, "PNG")


def animated_gif(width: int = 120, height: int = 90) -> bytes:
    """Three frames: red, green, blue. The first frame is the photo."""
    frames = [Image.new("RGB", (width, height), c).convert("P") for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp(width: int = 640, height: int = 480) -> bytes:
    return encode(photo(width, height), "WEBP", quality=80)


def heic(width: int = 640, height: int = 480, orientation: int | None = None) -> bytes:
    """An HEIC as iPhones write it; raises whatever pillow_heif raises when it cannot encode."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    params = {"exif": camera_exif(orientation).tobytes()} if orientation else {}
    return encode(photo(width, height), "HEIF", quality=80, **params)


# -- colour profiles -----------------------------------------------------------------------------

def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15f16(x) + _s15f16(y) + _s15f16(z)


def _gamma_tag(gamma: float) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", round(gamma * 256)) + b"\0\0"


def _desc_tag(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    body = b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_
    body += b"\0" * 8 + b"\0" * 3 + b"\0" * 67  # no Unicode, no ScriptCode
    return body


def matrix_icc(description: str, red, green, blue, white=(0.9642, 1.0, 0.8249), gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 RGB display profile: three primaries (D50-adapted XYZ), white point, one gamma."""
    tags = [(b"desc", _desc_tag(description)), (b"wtpt", _xyz_tag(*white)),
            (b"rXYZ", _xyz_tag(*red)), (b"gXYZ", _xyz_tag(*green)), (b"bXYZ", _xyz_tag(*blue)),
            (b"rTRC", _gamma_tag(gamma)), (b"gTRC", _gamma_tag(gamma)), (b"bTRC", _gamma_tag(gamma)),
            (b"cprt", b"text\0\0\0\0no copyright, test profile\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + b"\0" * 4 + b"\0" * 4
              + b"\0" * 4 + b"\0" * 8 + struct.pack(">I", 0) + _s15f16(0.9642) + _s15f16(1.0) + _s15f16(0.8249)
              + b"lcms" + b"\0" * 44)
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + data


def display_p3_icc() -> bytes:
    """Display P3 (D50-adapted primaries, gamma 2.2 approximating its sRGB-like curve)."""
    return matrix_icc("Display P3 (test)", (0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419),
                      (0.1571, 0.0666, 0.7841))


def swapped_icc() -> bytes:
    """A deliberately odd profile whose 'red' channel is sRGB green and 'green' is sRGB red."""
    return matrix_icc("Swapped red/green (test)", (0.3851, 0.7169, 0.0971), (0.4361, 0.2225, 0.0139),
                      (0.1431, 0.0606, 0.7141))


def jpeg_with_icc(icc: bytes, colour=(180, 80, 60), width: int = 200, height: int = 150) -> bytes:
    """A flat-coloured JPEG tagged with `icc` (so its pixels mean something other than sRGB)."""
    return encode(Image.new("RGB", (width, height), colour), "JPEG", quality=95, icc_profile=icc)


# -- damaged and hostile files -------------------------------------------------------------------

def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def pdf_named_jpg() -> bytes:
    return (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


def random_bytes(n: int = 4096, seed: int = 1234) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@cache
def huge_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid, all-black 1-bit PNG of width×height pixels, a few tens of KB on disk, built without a canvas."""
    row = b"\0" + b"\0" * ((width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    block = row * 500
    idat = b"".join(z.compress(block) for _ in range(height // 500)) + z.compress(row * (height % 500)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def odd_exif_jpeg(width: int = 400, height: int = 300) -> bytes:
    """Orientation 6 plus an ImageWidth tag holding text, as some phone firmwares write: Pillow reads it,
    but cannot write it back (so `ImageOps.exif_transpose` raises struct.error on it)."""
    raw = camera_exif(6, gps=False).tobytes()
    little, big = b"\x32\x01\x02\x00", b"\x01\x32\x00\x02"  # DateTime (0x0132), ASCII
    tag = little if little in raw else big
    raw = raw.replace(tag, b"\x00\x01\x02\x00" if tag == little else b"\x01\x00\x00\x02", 1)  # -> ImageWidth
    return encode(photo(width, height), "JPEG", quality=90, exif=raw)
