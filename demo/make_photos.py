"""Draw the demo pack's photos: synthetic, lesion-like pictures made for this pack (no patient, nothing downloaded).

Run once from the repository's root; the JPEGs it writes are committed under demo/photos/:

    .venv/bin/python demo/make_photos.py

Every picture is drawn from a fixed seed, so running it again draws the same pictures. Each has its own skin tone
and lighting as well as its own lesion, so no two are alike at a glance (domain/demo.py tells them apart by a
16 x 16 colour fingerprint, which shrinking and re-encoding barely move).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIDE = 384
OUT = Path(__file__).resolve().parent / "photos"


def skin(rng: random.Random, tone: tuple[int, int, int], light: float) -> Image.Image:
    """A skin-coloured background with a lighting gradient from one corner and fine mottling."""
    img = Image.new("RGB", (SIDE, SIDE), tone)
    px = img.load()
    assert px is not None
    angle = rng.uniform(0, 2 * math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    for y in range(SIDE):
        for x in range(SIDE):
            shade = 1 + light * (((x - SIDE / 2) * dx + (y - SIDE / 2) * dy) / SIDE)
            noise = rng.uniform(-6, 6)
            px[x, y] = tuple(max(0, min(255, int(c * shade + noise))) for c in tone)
    return img.filter(ImageFilter.GaussianBlur(1.2))


def blob(rng: random.Random, centre: tuple[float, float], radius: float, wobble: float, points: int = 48
         ) -> list[tuple[float, float]]:
    """An irregular closed outline around `centre`: a circle whose radius wanders by up to `wobble`."""
    phases = [rng.uniform(0, 2 * math.pi) for _ in range(4)]
    outline = []
    for i in range(points):
        a = 2 * math.pi * i / points
        r = radius * (1 + wobble * sum(math.sin((k + 2) * a + p) / (k + 1) for k, p in enumerate(phases)) / 2)
        outline.append((centre[0] + r * math.cos(a), centre[1] + r * math.sin(a)))
    return outline


def layer(img: Image.Image, draw_on: callable, blur: float) -> Image.Image:  # type: ignore[valid-type]
    """Draw on a transparent layer, soften it and lay it over `img`."""
    over = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw_on(ImageDraw.Draw(over))
    return Image.alpha_composite(img.convert("RGBA"), over.filter(ImageFilter.GaussianBlur(blur))).convert("RGB")


def melanoma() -> Image.Image:
    """Asymmetric, several browns and blue-black, an irregular border (malignant melanoma)."""
    rng = random.Random(6)
    img = skin(rng, (226, 184, 160), 0.25)
    c = (SIDE / 2 + 10, SIDE / 2 - 6)
    img = layer(img, lambda d: d.polygon(blob(rng, c, 120, 0.55), fill=(120, 70, 45, 255)), 2.5)
    img = layer(img, lambda d: d.polygon(blob(rng, (c[0] - 30, c[1] + 10), 70, 0.6), fill=(55, 30, 25, 255)), 3)
    img = layer(img, lambda d: d.polygon(blob(rng, (c[0] + 35, c[1] - 25), 40, 0.5), fill=(60, 65, 95, 230)), 4)
    return layer(img, lambda d: d.polygon(blob(rng, (c[0] + 50, c[1] + 45), 25, 0.4), fill=(200, 150, 140, 200)), 4)


def basal_cell() -> Image.Image:
    """A pearly pink papule with a rolled edge and fine vessels on it (basal cell carcinoma)."""
    rng = random.Random(1)
    img = skin(rng, (238, 200, 178), 0.35)
    c = (SIDE / 2, SIDE / 2)
    img = layer(img, lambda d: d.ellipse((c[0] - 95, c[1] - 85, c[0] + 95, c[1] + 85), fill=(236, 170, 170, 255)), 6)
    img = layer(img, lambda d: d.ellipse((c[0] - 60, c[1] - 55, c[0] + 60, c[1] + 55), fill=(250, 225, 220, 220)), 8)

    def vessels(d: ImageDraw.ImageDraw) -> None:
        for _ in range(7):
            x, y = c[0] + rng.uniform(-60, 60), c[1] + rng.uniform(-50, 50)
            pts = [(x, y)]
            for _ in range(6):
                x, y = x + rng.uniform(-18, 18), y + rng.uniform(-18, 18)
                pts.append((x, y))
            d.line(pts, fill=(190, 40, 60, 255), width=2)
    return layer(img, vessels, 0.6)


def seborrheic() -> Image.Image:
    """A stuck-on, warty, mid-brown plaque with small pale cysts (seborrheic keratosis)."""
    rng = random.Random(7)
    img = skin(rng, (200, 150, 115), 0.2)
    c = (SIDE / 2 - 8, SIDE / 2 + 12)
    img = layer(img, lambda d: d.polygon(blob(rng, c, 110, 0.18), fill=(135, 95, 60, 255)), 1.5)

    def texture(d: ImageDraw.ImageDraw) -> None:
        for _ in range(260):
            x, y = c[0] + rng.gauss(0, 45), c[1] + rng.gauss(0, 45)
            r = rng.uniform(2, 7)
            shade = rng.choice([(95, 65, 40, 255), (160, 120, 80, 255), (230, 215, 190, 255)])
            d.ellipse((x - r, y - r, x + r, y + r), fill=shade)
    return layer(img, texture, 0.8)


def hemangioma() -> Image.Image:
    """A soft, dome-shaped, bright red lobulated papule (hemangioma)."""
    rng = random.Random(12)
    img = skin(rng, (245, 215, 195), 0.3)
    c = (SIDE / 2 + 5, SIDE / 2)

    def lobes(d: ImageDraw.ImageDraw) -> None:
        for _ in range(6):
            x, y, r = c[0] + rng.uniform(-35, 35), c[1] + rng.uniform(-35, 35), rng.uniform(40, 60)
            d.ellipse((x - r, y - r, x + r, y + r), fill=(205, 30, 50, 255))
    img = layer(img, lobes, 5)
    return layer(img, lambda d: d.ellipse((c[0] - 40, c[1] - 45, c[0] - 5, c[1] - 20), fill=(255, 150, 150, 160)), 6)


def lentigo() -> Image.Image:
    """An evenly light-brown, flat, slightly irregular macule on sun-damaged skin (lentigo)."""
    rng = random.Random(14)
    img = skin(rng, (214, 170, 140), 0.15)
    c = (SIDE / 2 - 15, SIDE / 2 - 10)
    img = layer(img, lambda d: d.polygon(blob(rng, c, 100, 0.25), fill=(168, 118, 80, 230)), 7)

    def freckles(d: ImageDraw.ImageDraw) -> None:
        for _ in range(40):
            x, y, r = rng.uniform(0, SIDE), rng.uniform(0, SIDE), rng.uniform(2, 5)
            d.ellipse((x - r, y - r, x + r, y + r), fill=(175, 125, 90, 200))
    return layer(img, freckles, 1.5)


PHOTOS = {"melanoma.jpg": melanoma, "basal-cell.jpg": basal_cell, "seborrheic-keratosis.jpg": seborrheic,
          "hemangioma.jpg": hemangioma, "lentigo.jpg": lentigo}


def main() -> None:
    """Write every photo as a small JPEG (quality 85, no metadata)."""
    OUT.mkdir(exist_ok=True)
    for name, draw in PHOTOS.items():
        draw().save(OUT / name, "JPEG", quality=85, optimize=True)
        print(f"{OUT / name}: {(OUT / name).stat().st_size / 1024:.1f} KB")


if __name__ == "__main__":
    main()
