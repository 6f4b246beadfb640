#!/usr/bin/env python3
"""Writes the ImageIO codec test vectors and their PIL/torchvision goldens.

Run from anywhere with the reference interpreter (PIL 9.4, torchvision 0.14, numpy):

    /work/main/.venv-ref/bin/python datasets/codec-vectors/make_vectors.py

Writes, next to this script:
  vectors/     small images in every format ImageIO decodes, plus broken files
  expected.json  PIL's decode + convert("RGB") of every good vector, the failure each
               broken vector must raise, and PIL/torchvision resize, crop and ImageNet
               preprocessing goldens
  photos.json  per-photo goldens for ../shared/data/photos (when that folder exists)

PNGs are written by the small writer below (every colour type, bit depth, filter type and
Adam7), JPEGs by PIL, cjpeg (restart markers, arithmetic coding) and make_ycck.c (YCCK).
Broken JPEGs are checked with djpeg: libjpeg itself must warn about each one. cjpeg/djpeg
come from Debian's libjpeg-turbo-progs; a C compiler and libjpeg-dev build make_ycck.c.
"""

import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "vectors")
PHOTOS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "photos"))
WIDTH, HEIGHT = 17, 13
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def write_json(path, document):
    """Compact but diffable: one line per top-level key, one line per record of a list."""
    def render(value):
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return "[\n" + ",\n".join("  " + json.dumps(v) for v in value) + "\n ]"
        return json.dumps(value)
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(f" {json.dumps(k)}: {render(v)}" for k, v in document.items()) + "\n}\n")


# ---------------------------------------------------------------------------------------
# Pixel content: smooth ramps, a hard edge and a little noise, so that every codec path
# and every resample tap sees non-trivial values.

def base_rgb(width, height, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = x * 255 // max(width - 1, 1)
    g = y * 255 // max(height - 1, 1)
    b = np.where((x // 3 + y // 3) % 2 == 0, 40, 215)
    rgb = np.stack([r, g, b], axis=-1).astype(np.int32)
    rgb += rng.integers(-12, 13, size=rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# A minimal PNG writer: any colour type and bit depth, all five filter types (cycled by
# row), optional Adam7, extra chunks. Validity is confirmed by PIL decoding each file.

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(tag, data):
    body = tag + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """samples: 1-D ints (channels interleaved) -> bytes of one scanline."""
    if bit_depth == 8:
        return bytes(int(v) for v in samples)
    if bit_depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    out, accumulator, filled = bytearray(), 0, 0
    for v in samples:
        accumulator = (accumulator << bit_depth) | int(v)
        filled += bit_depth
        if filled == 8:
            out.append(accumulator)
            accumulator, filled = 0, 0
    if filled:
        out.append(accumulator << (8 - filled))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(rows, bpp):
    out, previous = bytearray(), bytes(len(rows[0])) if rows else b""
    for index, row in enumerate(rows):
        kind = index % 5
        filtered = bytearray()
        for i, value in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
            filtered.append((value - predictor) & 0xFF)
        out.append(kind)
        out += filtered
        previous = row
    return bytes(out)


def png_bytes(samples, color_type, bit_depth, palette=None, trns=None, interlace=False,
              before_idat=(), after_idat=()):
    """samples: [H, W, C] ints already at bit_depth (palette indices for colour type 3)."""
    height, width, channels = samples.shape
    assert channels == CHANNELS[color_type]
    bpp = max(1, channels * bit_depth // 8)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            raw += filter_rows([pack_row(r.reshape(-1), bit_depth) for r in sub], bpp)
    else:
        raw = filter_rows([pack_row(r.reshape(-1), bit_depth) for r in samples], bpp)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for tag, payload in before_idat:
        data += chunk(tag, payload)
    if palette is not None:
        data += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    compressed = zlib.compress(raw, 9)
    # two IDAT chunks: the decoder must join them
    half = len(compressed) // 2
    data += chunk(b"IDAT", compressed[:half]) + chunk(b"IDAT", compressed[half:])
    for tag, payload in after_idat:
        data += chunk(tag, payload)
    return data + chunk(b"IEND", b"")


def png_chunks(data):
    """[(offset, length, tag)] of every chunk after the signature."""
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        chunks.append((offset, length, data[offset + 4:offset + 8]))
        offset += 12 + length
    return chunks


# ---------------------------------------------------------------------------------------

def pil_rgb(path):
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def run(command, stdin=None):
    return subprocess.run(command, input=stdin, capture_output=True, check=False)


def djpeg_warning(path):
    """libjpeg's own complaint about a broken JPEG (djpeg's stderr), '' when it has none."""
    result = run(["djpeg", "-outfile", os.devnull, path])
    return result.stderr.decode("utf-8", "replace").strip()


def make_png_vectors(rgb, write):
    gray = (rgb.astype(np.int32) @ np.array([299, 587, 114]) // 1000).astype(np.uint8)
    alpha = ((np.arange(WIDTH)[None, :] * 15 + np.arange(HEIGHT)[:, None] * 7) % 256).astype(np.uint8)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    gray16 = np.minimum(gray.astype(np.int32) * 257 + x * 3, 65535)
    # 16-bit gray: PIL clamps at 255, so the lower rows stay below it to test both paths
    gray16[HEIGHT // 2:] = (x * 23 + y * 5)[HEIGHT // 2:]
    rgb16 = np.minimum(rgb.astype(np.int32) * 257 + ((x + y) % 7)[..., None], 65535)
    alpha16 = np.minimum(alpha.astype(np.int32) * 257 + 11, 65535)
    palette = np.array([[(i * 53) % 256, (i * 101) % 256, (255 - i * 17) % 256] for i in range(256)])
    index8 = ((x * 13 + y * 29 + gray // 16) % 256).astype(np.uint8)
    index4 = (index8 % 16).astype(np.uint8)
    index2 = (index8 % 4).astype(np.uint8)
    index1 = (index8 % 2).astype(np.uint8)

    def g(bits):
        return (gray >> (8 - bits))[..., None]

    write("png-gray1.png", png_bytes(g(1), 0, 1))
    write("png-gray2.png", png_bytes(g(2), 0, 2))
    write("png-gray4.png", png_bytes(g(4), 0, 4))
    write("png-gray8.png", png_bytes(gray[..., None], 0, 8))
    write("png-gray8-trns.png", png_bytes(gray[..., None], 0, 8, trns=struct.pack(">H", int(gray[0, 0]))))
    write("png-gray16.png", png_bytes(gray16[..., None], 0, 16))
    write("png-graya8.png", png_bytes(np.stack([gray, alpha], -1), 4, 8))
    write("png-graya16.png", png_bytes(np.stack([np.minimum(gray.astype(np.int32) * 257 + 5, 65535), alpha16], -1), 4, 16))
    write("png-rgb8.png", png_bytes(rgb, 2, 8))
    write("png-rgb8-trns.png", png_bytes(rgb, 2, 8, trns=struct.pack(">HHH", *[int(v) for v in rgb[0, 0]])))
    write("png-rgb16.png", png_bytes(rgb16, 2, 16))
    write("png-rgba8.png", png_bytes(np.concatenate([rgb, alpha[..., None]], -1), 6, 8))
    write("png-rgba16.png", png_bytes(np.concatenate([rgb16, alpha16[..., None]], -1), 6, 16))
    write("png-palette8-trns.png", png_bytes(index8[..., None], 3, 8, palette=palette,
                                             trns=bytes((i * 37) % 256 for i in range(200))))
    write("png-palette4.png", png_bytes(index4[..., None], 3, 4, palette=palette[:16]))
    write("png-palette2-trns.png", png_bytes(index2[..., None], 3, 2, palette=palette[:4], trns=b"\x00\x80"))
    write("png-palette1.png", png_bytes(index1[..., None], 3, 1, palette=palette[:2]))
    write("png-rgb8-adam7.png", png_bytes(rgb, 2, 8, interlace=True))
    write("png-gray2-adam7.png", png_bytes(g(2), 0, 2, interlace=True))
    write("png-palette4-adam7.png", png_bytes(index4[..., None], 3, 4, palette=palette[:16], interlace=True))
    write("png-rgba16-adam7.png", png_bytes(np.concatenate([rgb16, alpha16[..., None]], -1), 6, 16, interlace=True))
    write("png-rgb8-adam7-3x2.png", png_bytes(rgb[:2, :3], 2, 8, interlace=True))
    write("png-rgb8-1x1.png", png_bytes(rgb[:1, :1], 2, 8))
    # gAMA must not change the pixels (PIL ignores it); text chunks on both sides of IDAT
    write("png-rgb8-chunks.png", png_bytes(rgb, 2, 8, before_idat=[(b"gAMA", struct.pack(">I", 45455)),
                                                                  (b"tEXt", b"Comment\x00before")],
                                           after_idat=[(b"tEXt", b"Comment\x00after")]))


def make_jpeg_vectors(rgb, write, workdir):
    image = Image.fromarray(rgb, "RGB")
    saved = {}

    def save(name, im, **options):
        path = os.path.join(workdir, name)
        im.save(path, "JPEG", **options)
        with open(path, "rb") as f:
            saved[name] = f.read()
        write(name, saved[name])

    save("jpeg-baseline.jpg", image, quality=90)
    save("jpeg-baseline-444.jpg", image, quality=90, subsampling=0)
    save("jpeg-baseline-422.jpg", image, quality=90, subsampling=1)
    save("jpeg-progressive.jpg", image, quality=90, progressive=True)
    save("jpeg-gray.jpg", image.convert("L"), quality=90)
    save("jpeg-gray-progressive.jpg", image.convert("L"), quality=90, progressive=True)
    cmyk = np.stack([255 - rgb[..., 0], 255 - rgb[..., 1], 255 - rgb[..., 2],
                     ((np.arange(WIDTH)[None, :] * 9) % 120).astype(np.uint8).repeat(HEIGHT, 0)], -1)
    save("jpeg-cmyk.jpg", Image.fromarray(cmyk.astype(np.uint8), "CMYK"), quality=90)

    ppm = os.path.join(workdir, "base.ppm")
    image.save(ppm)
    for name, flags in [("jpeg-restart.jpg", ["-restart", "1B"]), ("jpeg-arithmetic.jpg", ["-arithmetic"])]:
        result = run(["cjpeg", "-quality", "90", *flags, ppm])
        if result.returncode != 0:
            sys.exit(f"cjpeg {flags} failed: {result.stderr.decode()}")
        write(name, result.stdout)

    helper = os.path.join(workdir, "make_ycck")
    build = run(["cc", "-O1", "-o", helper, os.path.join(HERE, "make_ycck.c"), "-ljpeg"])
    if build.returncode != 0:
        sys.exit(f"building make_ycck failed: {build.stderr.decode()}")
    # stored with Adobe polarity (inverted), as PIL stores CMYK
    ycck = run([helper, str(WIDTH), str(HEIGHT), "90"], stdin=bytes(255 - cmyk.astype(np.uint8).reshape(-1)))
    if ycck.returncode != 0:
        sys.exit(f"make_ycck failed: {ycck.stderr.decode()}")
    write("jpeg-ycck.jpg", ycck.stdout)
    return saved


def jpeg_segment(jpeg, marker):
    """Offset of the first segment with this marker byte, walking the header's segments."""
    offset = 2
    while jpeg[offset] == 0xFF:
        if jpeg[offset + 1] == marker:
            return offset
        (length,) = struct.unpack(">H", jpeg[offset + 2:offset + 4])
        offset += 2 + length
    raise ValueError(f"no 0xFF{marker:02X} segment")


def scan_range(jpeg):
    """(start, end) of the entropy-coded data of the first scan of a baseline JPEG."""
    sos = jpeg_segment(jpeg, 0xDA)
    (length,) = struct.unpack(">H", jpeg[sos + 2:sos + 4])
    start = sos + 2 + length
    end = jpeg.rindex(b"\xff\xd9")
    return start, end


def make_broken_vectors(good_png, good_jpeg, write):
    failures = []

    def broken(name, data, kind, contains):
        write(name, data)
        failures.append({"file": name, "kind": kind, "message_contains": contains})

    # JPEG: each must make libjpeg itself warn or fail (checked with djpeg below)
    start, end = scan_range(good_jpeg)
    middle = (start + end) // 2
    broken("jpeg-truncated-scan.jpg", good_jpeg[:middle], "corrupt", "Premature end of JPEG file")
    with open(os.path.join(VECTORS, "jpeg-progressive.jpg"), "rb") as f:
        progressive = f.read()
    broken("jpeg-progressive-truncated.jpg", progressive[:len(progressive) * 2 // 3], "corrupt",
           "Premature end of JPEG file")
    broken("jpeg-truncated-header.jpg", good_jpeg[:start - 40], "corrupt", "")
    broken("jpeg-corrupt-premature-marker.jpg", good_jpeg[:middle] + b"\xff\xd9", "corrupt",
           "Corrupt JPEG data")
    broken("jpeg-corrupt-extraneous-bytes.jpg", good_jpeg[:end] + b"\x12\x34\x56\x78" + good_jpeg[end:],
           "corrupt", "Corrupt JPEG data")
    # a run of 1 bits (0xFF stuffed as FF 00) is never a valid Huffman code
    broken("jpeg-corrupt-bad-huffman.jpg",
           good_jpeg[:start + 4] + b"\xff\x00" * 8 + good_jpeg[start + 20:], "corrupt", "Corrupt JPEG data")
    sof = jpeg_segment(good_jpeg, 0xC0)
    bomb = bytearray(good_jpeg)
    bomb[sof + 5:sof + 9] = struct.pack(">HH", 30000, 30000)  # height, width
    broken("jpeg-bomb-30000x30000.jpg", bytes(bomb), "tooManyPixels", "")

    # PNG
    chunks = png_chunks(good_png)
    ihdr = next(c for c in chunks if c[2] == b"IHDR")
    idat = next(c for c in chunks if c[2] == b"IDAT")
    text = next(c for c in chunks if c[2] == b"tEXt")

    def flip_crc(data, chunk_entry):
        offset, length, _ = chunk_entry
        crc_at = offset + 8 + length
        out = bytearray(data)
        out[crc_at + 3] ^= 0x5A
        return bytes(out)

    broken("png-bad-crc-ihdr.png", flip_crc(good_png, ihdr), "corrupt", "CRC error")
    broken("png-bad-crc-idat.png", flip_crc(good_png, idat), "corrupt", "CRC error")
    broken("png-bad-crc-text.png", flip_crc(good_png, text), "corrupt", "CRC error")
    # damaged deflate data under a correct CRC: zlib must notice
    offset, length, _ = idat
    zdata = bytearray(good_png[offset + 8:offset + 8 + length])
    for i in range(2, len(zdata), 3):
        zdata[i] ^= 0xA5
    damaged = good_png[:offset] + chunk(b"IDAT", bytes(zdata)) + good_png[offset + 12 + length:]
    broken("png-bad-deflate.png", damaged, "corrupt", "")
    broken("png-truncated-idat.png", good_png[:offset + 8 + length // 2], "corrupt", "truncated")
    broken("png-truncated-no-iend.png", good_png[:-12], "corrupt", "truncated")
    broken("png-truncated-signature.png", good_png[:6], "unknownFormat", "")
    bomb_png = bytearray(good_png)
    offset = ihdr[0]
    bomb_png[offset + 8:offset + 16] = struct.pack(">II", 30000, 30000)
    body = bytes(bomb_png[offset + 4:offset + 8 + 13])
    bomb_png[offset + 21:offset + 25] = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    broken("png-bomb-30000x30000.png", bytes(bomb_png), "tooManyPixels", "")

    broken("not-an-image.txt", b"hello, this is not an image\n", "unknownFormat", "")
    broken("empty.bin", b"", "unknownFormat", "")
    broken("gif-header.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "unknownFormat", "")

    for failure in failures:
        name = failure["file"]
        if name.startswith("jpeg-") and failure["kind"] == "corrupt":
            warning = djpeg_warning(os.path.join(VECTORS, name))
            if not warning or failure["message_contains"] not in warning:
                sys.exit(f"{name}: libjpeg does not complain as expected (djpeg said {warning!r})")
            failure["libjpeg_says"] = warning
    return failures


def make_resize_goldens():
    """PIL Image.resize(size, BILINEAR), torchvision center_crop and the ImageNet transform."""
    import torch
    import torchvision.transforms as T
    import torchvision.transforms.functional as F

    torch.set_num_threads(2)
    sources = {name: pil_rgb(os.path.join(VECTORS, name))
               for name in ["png-rgb8.png", "resize-61x47.png", "resize-11x19.png"]}
    resizes = []
    cases = [("png-rgb8.png", s) for s in [(40, 29), (7, 5), (5, 20), (17, 6), (9, 13), (1, 1), (34, 26),
                                           (16, 12), (17, 13)]]
    cases += [("resize-61x47.png", s) for s in [(20, 15), (8, 6), (61, 9), (80, 60), (3, 100), (60, 46)]]
    cases += [("resize-11x19.png", s) for s in [(4, 7), (23, 41)]]
    for name, (w, h) in cases:
        out = sources[name].resize((w, h), Image.BILINEAR)
        resizes.append({"source": name, "width": w, "height": h, "rgb_base64": b64(out.tobytes())})

    crops = []
    for name, (w, h) in [("png-rgb8.png", s) for s in [(10, 7), (8, 8), (21, 15), (17, 20), (5, 13), (16, 12),
                                                       (17, 13), (1, 1)]] + [("resize-11x19.png", (11, 2))]:
        out = F.center_crop(sources[name], [h, w])
        assert out.size == (w, h)
        crops.append({"source": name, "width": w, "height": h, "rgb_base64": b64(out.convert("RGB").tobytes())})

    def transform(resize, crop):
        return T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(crop),
                          T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    preprocess = []
    for name, resize, crop in [("png-rgb8.png", 40, 32), ("resize-61x47.png", 20, 16),
                               ("resize-11x19.png", 9, 8), ("resize-11x19.png", 11, 11),
                               ("png-rgb8.png", 13, 15)]:
        tensor = transform(resize, crop)(sources[name])
        assert tensor.dtype == torch.float32 and tensor.shape == (3, crop, crop)
        preprocess.append({"source": name, "resize": resize, "crop": crop,
                           "float32_base64": b64(tensor.numpy().astype("<f4").tobytes())})
    big = transform(256, 224)(sources["resize-61x47.png"])
    preprocess_samples = [tensor_samples("resize-61x47.png", big)]
    return resizes, crops, preprocess, preprocess_samples


def tensor_samples(name, tensor, count=256, seed=7):
    flat = tensor.numpy().reshape(-1).astype(np.float32)
    rng = np.random.default_rng(seed)
    indices = sorted(int(i) for i in rng.choice(flat.size, size=count, replace=False))
    channel_means = [float(np.mean(tensor.numpy()[c].astype(np.float64))) for c in range(3)]
    return {"source": name, "resize": 256, "crop": 224, "shape": list(tensor.shape),
            "channel_means": channel_means, "indices": indices,
            "values_float32_base64": b64(flat[indices].astype("<f4").tobytes())}


def make_photo_goldens():
    import torchvision.transforms as T

    transform = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(224),
                           T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    photos = []
    for name in sorted(os.listdir(PHOTOS)):
        image = pil_rgb(os.path.join(PHOTOS, name))
        pixels = np.asarray(image)
        h, w, _ = pixels.shape
        xs = [(2 * i + 1) * w // 32 for i in range(16)]
        ys = [(2 * i + 1) * h // 32 for i in range(16)]
        samples = pixels[np.ix_(ys, xs)]
        entry = {"file": name, "width": w, "height": h,
                 "channel_means": [float(pixels[..., c].astype(np.float64).mean()) for c in range(3)],
                 "grid_16x16_rgb_base64": b64(samples.tobytes())}
        entry["preprocess"] = tensor_samples(name, transform(image))
        photos.append(entry)
    return photos


def main():
    if os.path.isdir(VECTORS):
        shutil.rmtree(VECTORS)
    os.makedirs(VECTORS)

    def write(name, data):
        with open(os.path.join(VECTORS, name), "wb") as f:
            f.write(data)

    rgb = base_rgb(WIDTH, HEIGHT, seed=1)
    make_png_vectors(rgb, write)
    write("resize-61x47.png", png_bytes(base_rgb(61, 47, seed=2), 2, 8))
    write("resize-11x19.png", png_bytes(base_rgb(11, 19, seed=3), 2, 8))
    with open(os.path.join(VECTORS, "png-rgb8.png"), "rb") as f:
        write("png-named-as.jpg", f.read())  # decoders pick the codec by magic bytes

    with tempfile.TemporaryDirectory() as workdir:
        jpegs = make_jpeg_vectors(rgb, write, workdir)
    with open(os.path.join(VECTORS, "png-rgb8-chunks.png"), "rb") as f:
        good_png = f.read()
    failures = make_broken_vectors(good_png, jpegs["jpeg-baseline.jpg"], write)
    broken = {f["file"] for f in failures}

    decodes = []
    for name in sorted(os.listdir(VECTORS)):
        if name in broken:
            continue
        image = pil_rgb(os.path.join(VECTORS, name))
        codec = "jpeg" if name.startswith("jpeg-") else "png"
        decodes.append({"file": name, "codec": codec, "width": image.width, "height": image.height,
                        "rgb_base64": b64(image.tobytes())})

    resizes, crops, preprocess, preprocess_samples = make_resize_goldens()
    expected = {
        "generator": "datasets/codec-vectors/make_vectors.py",
        "pil": Image.__version__,
        "imagenet_mean": IMAGENET_MEAN,
        "imagenet_std": IMAGENET_STD,
        "decodes": decodes,
        "failures": failures,
        "resizes": resizes,
        "crops": crops,
        "preprocess": preprocess,
        "preprocess_samples": preprocess_samples,
    }
    write_json(os.path.join(HERE, "expected.json"), expected)

    if os.path.isdir(PHOTOS):
        write_json(os.path.join(HERE, "photos.json"),
                   {"generator": "datasets/codec-vectors/make_vectors.py", "photos": make_photo_goldens()})
    else:
        print(f"note: {PHOTOS} not found, photos.json left as it was", file=sys.stderr)


if __name__ == "__main__":
    main()
