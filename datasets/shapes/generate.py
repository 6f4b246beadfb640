"""Seeded generator of the `shapes` COCO-format detection dataset (8 shape classes on cluttered backgrounds).

Usage:
    python datasets/shapes/generate.py --split val    # 200 images, seed 1 (the committed split)
    python datasets/shapes/generate.py --split train  # 4000 images, seed 1000 (regenerated, ignored by git)
    python datasets/shapes/generate.py --split heldout  # 2000 images, seed 3 (regenerated, ignored by git)
    python datasets/shapes/generate.py --out DIR --count N --seed S

Every image is drawn from its own generator seeded with (seed, image index), so the output does
not depend on the number of worker processes. See datasets/shapes/README.md for the contents.
"""

import argparse
import json
import math
import os
import sys
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

IMAGE_SIZE = 256
SUPERSAMPLE = 4
JPEG_QUALITY = 90

CATEGORIES = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
    {"id": 4, "name": "star", "supercategory": "shape"},
    {"id": 5, "name": "cross", "supercategory": "shape"},
    {"id": 6, "name": "hexagon", "supercategory": "shape"},
    {"id": 7, "name": "ring", "supercategory": "shape"},
    {"id": 8, "name": "diamond", "supercategory": "shape"},
]
CLASS_NAMES = {c["id"]: c["name"] for c in CATEGORIES}
DISTRACTOR_KINDS = ["ellipse", "rectangle", "pentagon", "crescent", "arc", "star4", "tee", "blob", "octagon"]

# One palette shared by every class, so colour never decides the class.
PALETTE = np.array([
    [220, 40, 40], [240, 140, 30], [240, 220, 40], [60, 180, 60], [40, 160, 160], [50, 90, 220],
    [140, 60, 200], [230, 90, 170], [250, 250, 250], [30, 30, 30], [140, 100, 60], [150, 150, 150],
], dtype=np.float32)

SPLITS = {"val": (1, 200), "calib": (2, 32), "train": (1000, 4000), "heldout": (3, 2000)}


# ----------------------------------------------------------------------------- geometry

def regular_polygon(count, radius=1.0, phase=0.0):
    return [(radius * math.cos(phase + 2 * math.pi * i / count), radius * math.sin(phase + 2 * math.pi * i / count))
            for i in range(count)]


def star_polygon(points, inner, phase=-math.pi / 2):
    out = []
    for i in range(2 * points):
        r = 1.0 if i % 2 == 0 else inner
        a = phase + math.pi * i / points
        out.append((r * math.cos(a), r * math.sin(a)))
    return out


def shape_parts(kind, rng):
    """Unit-radius description of a shape: a list of ('poly', points) / ('ellipse', rx, ry) parts,
    drawn with fill 255, and ('hole_ellipse', rx, ry, dx) / ('hole_poly', points) parts drawn with 0."""
    if kind == "circle":
        return [("ellipse", 1.0, 1.0, 0.0)]
    if kind == "ring":
        inner = rng.uniform(0.45, 0.65)
        return [("ellipse", 1.0, 1.0, 0.0), ("hole_ellipse", inner, inner, 0.0)]
    if kind == "square":
        s = 1 / math.sqrt(2)
        return [("poly", [(-s, -s), (s, -s), (s, s), (-s, s)])]
    if kind == "triangle":
        return [("poly", regular_polygon(3, 1.0, -math.pi / 2))]
    if kind == "star":
        return [("poly", star_polygon(5, rng.uniform(0.38, 0.5)))]
    if kind == "cross":
        w = rng.uniform(0.32, 0.42)
        h = 1 / math.sqrt(1 + w * w)
        w = w * h
        return [("poly", [(-w, -h), (w, -h), (w, -w), (h, -w), (h, w), (w, w), (w, h), (-w, h), (-w, w),
                          (-h, w), (-h, -w), (-w, -w)])]
    if kind == "hexagon":
        return [("poly", regular_polygon(6))]
    if kind == "diamond":
        minor = rng.uniform(0.5, 0.68)
        return [("poly", [(0, -1), (minor, 0), (0, 1), (-minor, 0)])]
    # look-alike distractors (never annotated)
    if kind == "ellipse":
        return [("ellipse", 1.0, rng.uniform(0.3, 0.65), 0.0)]
    if kind == "rectangle":
        r = rng.uniform(0.2, 0.55)
        h = 1 / math.sqrt(1 + r * r)
        w = r * h
        return [("poly", [(-h, -w), (h, -w), (h, w), (-h, w)])]
    if kind == "pentagon":
        return [("poly", regular_polygon(5, 1.0, -math.pi / 2))]
    if kind == "octagon":
        return [("poly", regular_polygon(8, 1.0, math.pi / 8))]
    if kind == "crescent":
        return [("ellipse", 1.0, 1.0, 0.0), ("hole_ellipse", 0.9, 0.9, rng.uniform(0.35, 0.6))]
    if kind == "arc":
        inner = rng.uniform(0.5, 0.7)
        cut = rng.uniform(0.6, 1.4)
        return [("ellipse", 1.0, 1.0, 0.0), ("hole_ellipse", inner, inner, 0.0),
                ("hole_poly", [(0, 0), (2 * math.cos(-cut), 2 * math.sin(-cut)), (2, 0), (2 * math.cos(cut), 2 * math.sin(cut))])]
    if kind == "star4":
        return [("poly", star_polygon(4, rng.uniform(0.3, 0.45)))]
    if kind == "tee":
        w = rng.uniform(0.25, 0.35)
        return [("poly", [(-0.8, -0.8), (0.8, -0.8), (0.8, -0.8 + 2 * w), (w, -0.8 + 2 * w), (w, 0.9), (-w, 0.9),
                          (-w, -0.8 + 2 * w), (-0.8, -0.8 + 2 * w)])]
    if kind == "blob":
        count = int(rng.integers(6, 10))
        angles = np.sort(rng.uniform(0, 2 * math.pi, count))
        radii = rng.uniform(0.45, 1.0, count)
        return [("poly", [(r * math.cos(a), r * math.sin(a)) for r, a in zip(radii, angles)])]
    raise ValueError(kind)


def render_alpha(parts, cx, cy, radius, angle):
    """Anti-aliased coverage of a shape centred at (cx, cy) (pixels) with circumradius `radius`,
    rotated by `angle`. Returns (alpha float32 [h, w] in 0..1, x0, y0) in image coordinates;
    the patch may extend outside the image."""
    x0 = int(math.floor(cx - radius)) - 2
    y0 = int(math.floor(cy - radius)) - 2
    w = int(math.ceil(cx + radius)) + 2 - x0
    h = int(math.ceil(cy + radius)) + 2 - y0
    s = SUPERSAMPLE
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    ca, sa = math.cos(angle), math.sin(angle)

    def to_canvas(px, py):
        x = cx + radius * (ca * px - sa * py)
        y = cy + radius * (sa * px + ca * py)
        return ((x - x0) * s, (y - y0) * s)

    for part in parts:
        if part[0] in ("poly", "hole_poly"):
            pts = [to_canvas(px, py) for px, py in part[1]]
            draw.polygon(pts, fill=255 if part[0] == "poly" else 0)
        else:
            _, rx, ry, dx = part
            fill = 255 if part[0] == "ellipse" else 0
            if abs(rx - ry) < 1e-9:
                ex, ey = to_canvas(dx, 0.0)
                r = rx * radius * s
                draw.ellipse([ex - r, ey - r, ex + r, ey + r], fill=fill)
            else:
                # rotated ellipse as a dense polygon
                pts = [to_canvas(dx + rx * math.cos(t), ry * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 96, endpoint=False)]
                draw.polygon(pts, fill=fill)
    a = np.asarray(canvas, dtype=np.float32).reshape(h, s, w, s).mean(axis=(1, 3)) / 255.0
    return a, x0, y0


def place(alpha, x0, y0):
    """Clip a patch into a full-size image frame. Returns a [S, S] float32 array."""
    full = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    h, w = alpha.shape
    ax0, ay0 = max(0, -x0), max(0, -y0)
    bx0, by0 = max(0, x0), max(0, y0)
    bx1, by1 = min(IMAGE_SIZE, x0 + w), min(IMAGE_SIZE, y0 + h)
    if bx1 > bx0 and by1 > by0:
        full[by0:by1, bx0:bx1] = alpha[ay0:ay0 + (by1 - by0), ax0:ax0 + (bx1 - bx0)]
    return full


# ----------------------------------------------------------------------------- colours and textures

def random_colour(rng, avoid=None, min_distance=85.0):
    for _ in range(12):
        c = PALETTE[rng.integers(len(PALETTE))] * rng.uniform(0.75, 1.1) + rng.normal(0, 12, 3)
        c = np.clip(c, 0, 255)
        if avoid is None or np.linalg.norm(c - avoid) >= min_distance:
            return c
    return c


def texture(rng, h, w, base, second=None):
    """A [h, w, 3] float32 fill: solid, stripes, checker, dots, noise or gradient."""
    if second is None:
        second = np.clip(base * rng.uniform(0.45, 0.8) + rng.normal(0, 20, 3), 0, 255)
    kind = rng.choice(["solid", "solid", "stripes", "checker", "dots", "noise", "gradient"])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "solid":
        t = np.zeros((h, w), np.float32)
    elif kind == "stripes":
        th = rng.uniform(0, math.pi)
        period = rng.uniform(3, 9)
        t = (np.sin((xx * math.cos(th) + yy * math.sin(th)) * 2 * math.pi / period) > 0).astype(np.float32)
    elif kind == "checker":
        p = rng.uniform(3, 8)
        t = ((np.floor(xx / p) + np.floor(yy / p)) % 2).astype(np.float32)
    elif kind == "dots":
        p = rng.uniform(4, 8)
        t = (((xx % p) - p / 2) ** 2 + ((yy % p) - p / 2) ** 2 < (p / 3.5) ** 2).astype(np.float32)
    elif kind == "noise":
        t = np.clip(rng.normal(0.3, 0.3, (h, w)), 0, 1).astype(np.float32)
    else:
        th = rng.uniform(0, 2 * math.pi)
        g = xx * math.cos(th) + yy * math.sin(th)
        t = (g - g.min()) / max(1e-6, g.max() - g.min())
    return base[None, None, :] * (1 - t[..., None]) + second[None, None, :] * t[..., None]


def background(rng):
    s = IMAGE_SIZE
    kind = rng.choice(["smooth", "smooth", "stripes", "texture"])
    if kind == "smooth":
        grid = int(rng.integers(2, 12))
        small = (rng.uniform(30, 230, (grid, grid, 3))).astype(np.uint8)
        img = np.asarray(Image.fromarray(small).resize((s, s), Image.BICUBIC), np.float32)
    elif kind == "stripes":
        a = random_colour(rng)
        b = np.clip(a + rng.normal(0, 45, 3), 0, 255)
        th = rng.uniform(0, math.pi)
        period = rng.uniform(6, 30)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(th) + yy * math.sin(th)) * 2 * math.pi / period)
        img = a * (1 - t[..., None]) + b * t[..., None]
    else:
        img = texture(rng, s, s, random_colour(rng))
        img = 0.5 * img + 0.5 * rng.uniform(40, 200, 3)[None, None, :]
    img = img + rng.normal(0, rng.uniform(2, 8), (s, s, 3))
    # clutter: lines, scribbles and specks
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(5, 30))):
        c = tuple(int(v) for v in random_colour(rng))
        x, y = rng.uniform(0, s, 2)
        if rng.random() < 0.6:
            length = rng.uniform(10, 120)
            th = rng.uniform(0, 2 * math.pi)
            draw.line([(x, y), (x + length * math.cos(th), y + length * math.sin(th))], fill=c,
                      width=int(rng.integers(1, 4)))
        else:
            r = rng.uniform(1, 4)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=c)
    return np.asarray(pil, np.float32).copy()


# ----------------------------------------------------------------------------- scene

class Scene:
    def __init__(self, rng):
        self.rng = rng
        self.layers = []      # (alpha_full, fill_full) in drawing order
        self.objects = []     # dicts: category_id, hard (bool mask, updated), full_area, crowd group
        self.image = background(rng)

    def _make(self, kind, size):
        rng = self.rng
        radius = size / 2.0
        return shape_parts(kind, rng), radius, rng.uniform(0, 2 * math.pi)

    def try_add(self, kind, size, center, annotate, crowd=None, max_occlusion=0.5, min_visible=0.5,
                forbidden_box=None):
        parts, radius, angle = self._make(kind, size)
        cx, cy = center
        alpha, x0, y0 = render_alpha(parts, cx, cy, radius, angle)
        full_area = float((alpha >= 0.5).sum())
        if full_area < 4:
            return False
        full = place(alpha, x0, y0)
        hard = full >= 0.5
        visible_now = float(hard.sum())
        if annotate and visible_now / full_area < min_visible:
            return False
        if forbidden_box is not None and hard.any():
            ys, xs = np.nonzero(hard)
            fx0, fy0, fx1, fy1 = forbidden_box
            if xs.max() >= fx0 and xs.min() < fx1 and ys.max() >= fy0 and ys.min() < fy1:
                return False
        # existing annotated objects must stay at least (1 - max_occlusion) visible
        for obj in self.objects:
            if obj["crowd"] is not None and crowd is not None and obj["crowd"] == crowd:
                continue
            remaining = float((obj["hard"] & ~hard).sum())
            if remaining / obj["full_area"] < 1 - max_occlusion or remaining < obj["min_pixels"]:
                return False
        for obj in self.objects:
            obj["hard"] &= ~hard
        h, w = alpha.shape
        background_mean = self.image[max(0, y0):max(0, y0 + h), max(0, x0):max(0, x0 + w)].reshape(-1, 3)
        background_mean = background_mean.mean(axis=0) if len(background_mean) else None
        base = random_colour(self.rng, avoid=background_mean)
        fill = texture(self.rng, h, w, base)
        fill_full = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)
        for ch in range(3):
            fill_full[..., ch] = place(fill[..., ch], x0, y0)
        if self.rng.random() < 0.3:
            # darker outline: alpha of a slightly larger shape under the fill
            outline, ox0, oy0 = render_alpha(parts, cx, cy, radius + self.rng.uniform(0.8, 1.6), angle)
            outline_full = place(outline, ox0, oy0)
            self.image = self.image * (1 - outline_full[..., None]) + (base * 0.35)[None, None, :] * outline_full[..., None]
        self.image = self.image * (1 - full[..., None]) + fill_full * full[..., None]
        if annotate:
            self.objects.append({"category_id": CATEGORY_OF[kind], "hard": hard, "full_area": full_area,
                                 "crowd": crowd, "min_pixels": 12 if crowd is not None else 24})
        return True


CATEGORY_OF = {c["name"]: c["id"] for c in CATEGORIES}


def visible_box(mask):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return [x0, y0, x1 - x0, y1 - y0]


def log_uniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def generate_image(args):
    seed, index = args
    rng = np.random.default_rng([seed, index])
    scene = Scene(rng)
    s = IMAGE_SIZE
    names = [c["name"] for c in CATEGORIES]

    # distractors under the objects
    for _ in range(int(rng.integers(1, 7))):
        size = log_uniform(rng, 10, 110)
        scene.try_add(rng.choice(DISTRACTOR_KINDS), size, rng.uniform(0, s, 2), annotate=False)

    crowd_box = None
    crowd_boxes = []
    if rng.random() < 0.12:
        # a crowded cluster of small same-class objects, annotated as one iscrowd box
        kind = rng.choice(names)
        region = rng.uniform(40, 90)
        rx, ry = rng.uniform(10, s - 10 - region, 2)
        placed = 0
        for _ in range(int(rng.integers(8, 18))):
            size = rng.uniform(8, 18)
            center = (rx + rng.uniform(0, region), ry + rng.uniform(0, region))
            if scene.try_add(kind, size, center, annotate=True, crowd=1, max_occlusion=0.7, min_visible=0.3):
                placed += 1
        members = [o for o in scene.objects if o["crowd"] == 1]
        if placed >= 4:
            union = np.zeros((s, s), bool)
            for o in members:
                union |= o["hard"]
            crowd_box = visible_box(union)
            if crowd_box is not None:
                crowd_boxes.append((CATEGORY_OF[kind], crowd_box))
        else:
            for o in members:
                o["crowd"] = None  # too few to be a crowd: annotate them one by one

    mode = rng.random()
    if mode < 0.05:
        count, lo, hi = 0, 10, 20                         # no objects (distractors only)
    elif mode < 0.35:
        count, lo, hi = int(rng.integers(1, 5)), 45, 190  # few, mostly large
    elif mode < 0.80:
        count, lo, hi = int(rng.integers(3, 11)), 16, 140  # mixed scales
    else:
        count, lo, hi = int(rng.integers(6, 17)), 10, 45  # many small
    forbidden = None
    if crowd_box is not None:
        x, y, w, h = crowd_box
        forbidden = (x - 2, y - 2, x + w + 2, y + h + 2)
    for _ in range(count):
        kind = rng.choice(names)
        size = log_uniform(rng, lo, hi)
        for attempt in range(25):
            singles = [o for o in scene.objects if o["crowd"] is None]
            if singles and rng.random() < 0.3:
                # touching / overlapping a previous object
                other = singles[int(rng.integers(len(singles)))]
                box = visible_box(other["hard"])
                if box is None:
                    continue
                ox, oy = box[0] + box[2] / 2, box[1] + box[3] / 2
                distance = (max(box[2], box[3]) / 2 + size / 2) * rng.uniform(0.65, 0.95)
                th = rng.uniform(0, 2 * math.pi)
                center = (ox + distance * math.cos(th), oy + distance * math.sin(th))
            else:
                margin = 0.2 * size
                center = tuple(rng.uniform(-margin, s + margin, 2))
            if scene.try_add(kind, size, center, annotate=True, forbidden_box=forbidden):
                break

    # distractors over the objects (occlusion)
    for _ in range(int(rng.integers(0, 4))):
        size = log_uniform(rng, 10, 70)
        scene.try_add(rng.choice(DISTRACTOR_KINDS), size, rng.uniform(0, s, 2), annotate=False)

    image = scene.image * rng.uniform(0.85, 1.1) + rng.normal(0, rng.uniform(1, 4), (s, s, 3))
    pil = Image.fromarray(np.clip(np.round(image), 0, 255).astype(np.uint8))
    if rng.random() < 0.2:
        pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.4, 0.9))))

    annotations = []
    for obj in scene.objects:
        if obj["crowd"] is not None:
            continue
        box = visible_box(obj["hard"])
        if box is None:
            continue
        annotations.append({"category_id": obj["category_id"], "bbox": box, "area": float(box[2] * box[3]),
                            "iscrowd": 0})
    for category_id, box in crowd_boxes:
        annotations.append({"category_id": category_id, "bbox": box, "area": float(box[2] * box[3]), "iscrowd": 1})
    return index, pil, annotations


def generate(out_dir, count, seed, processes=2):
    images_dir = os.path.join(out_dir, "images")
    os.makedirs(images_dir, exist_ok=True)
    images, annotations = [], []
    jobs = [(seed, i) for i in range(count)]
    with Pool(processes) as pool:
        for index, pil, anns in pool.imap(generate_image, jobs, chunksize=8):
            image_id = index + 1
            name = f"{image_id:06d}.jpg"
            pil.save(os.path.join(images_dir, name), quality=JPEG_QUALITY)
            images.append({"id": image_id, "file_name": name, "width": IMAGE_SIZE, "height": IMAGE_SIZE})
            for a in anns:
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id, **a))
    dataset = {
        "info": {"description": "detq shapes: synthetic 8-class shape detection set",
                 "generator": "datasets/shapes/generate.py", "seed": seed, "count": count,
                 "area": "box area (w * h of the visible-pixel box)"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    path = os.path.join(out_dir, "instances.json")
    with open(path + ".tmp", "w") as f:
        json.dump(dataset, f, separators=(",", ":"))
    os.replace(path + ".tmp", path)
    return dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=sorted(SPLITS), help="a named split: sets --out, --seed, --count")
    parser.add_argument("--out")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--count", type=int)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    seed, count, out = None, None, args.out
    if args.split:
        seed, count = SPLITS[args.split]
        out = out or os.path.join(here, args.split)
    seed = args.seed if args.seed is not None else seed
    count = args.count if args.count is not None else count
    if out is None or seed is None or count is None:
        parser.error("give --split, or --out, --seed and --count")
    dataset = generate(out, count, seed, args.processes)
    crowd = sum(a["iscrowd"] for a in dataset["annotations"])
    print(f"{out}: {len(dataset['images'])} images, {len(dataset['annotations'])} annotations "
          f"({crowd} crowd)", file=sys.stderr)


if __name__ == "__main__":
    main()
