#!/usr/bin/env python3
"""Writes the BoxOps golden fixtures (Tests/BoxOpsTests/Fixtures/*.json) from torchvision 0.14.

Run from the repository root with the reference environment:
    /work/main/.venv-ref/bin/python detectors/tools/make_boxops_goldens.py

Everything is seeded; rerunning writes identical files. Float32 values are written as the
shortest decimal that round-trips to the same float32, so the Swift tests read exact values.
"""
import json
import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torchvision
from torchvision.models.detection._utils import BoxCoder, BoxLinearCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import MultiScaleRoIAlign, batched_nms, nms, roi_align
from torchvision.ops.boxes import _batched_nms_coordinate_trick, _batched_nms_vanilla
from torchvision.ops.poolers import LevelMapper

torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "BoxOpsTests", "Fixtures")


def f32(t):
    """A float32 tensor as a flat list of shortest-round-trip floats."""
    a = t.detach().to(torch.float32).contiguous().view(-1).numpy()
    return [float(repr(np.float32(x))) if math.isfinite(x) else None for x in a]


def ints(t):
    return [int(x) for x in t.view(-1).tolist()]


def write(name, payload):
    payload = OrderedDict([("generator", "detectors/tools/make_boxops_goldens.py"),
                           ("torch", torch.__version__), ("torchvision", torchvision.__version__)]
                          + list(payload.items()))
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


def anchors_case(name, sizes, ratios, image_size, feature_sizes):
    generator = AnchorGenerator(sizes, ratios)
    images = ImageList(torch.zeros(1, 3, *image_size), [tuple(image_size)])
    features = [torch.zeros(1, 1, h, w) for h, w in feature_sizes]
    anchors = generator(images, features)[0]
    return OrderedDict(name=name, sizes=[list(map(float, s)) for s in sizes],
                       aspect_ratios=[list(map(float, r)) for r in ratios],
                       image_size=list(image_size), feature_sizes=[list(s) for s in feature_sizes],
                       cell_anchors=[f32(c) for c in generator.cell_anchors],
                       count=anchors.shape[0], anchors=f32(anchors))


def make_anchors():
    retina_sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512])
    cases = [
        # RetinaNet: 3 sizes x 3 ratios on 5 levels; 101 / 2 = 50.5 rounds half to even.
        anchors_case("retinanet_like", retina_sizes, ((0.5, 1.0, 2.0),) * 5,
                     (64, 80), [(8, 10), (4, 5), (2, 3), (1, 2), (1, 1)]),
        # Faster R-CNN FPN: 1 size x 3 ratios per level; 64 // 3 = 21 and 96 // 5 = 19 are inexact strides.
        anchors_case("fasterrcnn_like", ((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5,
                     (64, 96), [(16, 24), (8, 12), (4, 6), (3, 5), (1, 2)]),
        # Faster R-CNN MobileNet FPN: 5 sizes x 3 ratios on 3 levels.
        anchors_case("fasterrcnn_mobilenet_like", ((32, 64, 128, 256, 512),) * 3, ((0.5, 1.0, 2.0),) * 3,
                     (80, 64), [(3, 2), (3, 2), (2, 1)]),
        # FCOS: one square anchor per location.
        anchors_case("fcos_like", ((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5,
                     (64, 80), [(8, 10), (4, 5), (2, 3), (1, 2), (1, 1)]),
    ]
    write("anchors.json", OrderedDict(cases=cases))


def default_boxes_case(name, generator, image_size, feature_sizes, row_step):
    images = ImageList(torch.zeros(1, 3, *image_size), [tuple(image_size)])
    features = [torch.zeros(1, 1, h, w) for h, w in feature_sizes]
    boxes = generator(images, features)[0]
    rows = list(range(0, boxes.shape[0], row_step))
    if rows[-1] != boxes.shape[0] - 1:
        rows.append(boxes.shape[0] - 1)
    return OrderedDict(name=name, aspect_ratios=[list(map(float, r)) for r in generator.aspect_ratios],
                       scales=list(map(float, generator.scales)), steps=generator.steps, clip=generator.clip,
                       image_size=list(image_size), feature_sizes=[list(s) for s in feature_sizes],
                       wh_pairs=[f32(p) for p in generator._wh_pairs],
                       count=boxes.shape[0], row_step=row_step, rows=rows, boxes=f32(boxes[rows]))


def make_default_boxes():
    ssd300 = DefaultBoxGenerator([[2], [2, 3], [2, 3], [2, 3], [2], [2]],
                                 scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05], steps=[8, 16, 32, 64, 100, 300])
    ssdlite = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    cases = [
        # SSD300: every 7th of the 8732 boxes (7 is prime to the 4 and 6 boxes per location).
        default_boxes_case("ssd300_like", ssd300, (300, 300), [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)], 7),
        # SSDlite320 on a non-square padded batch: scales from min/max ratio, no steps, clip.
        default_boxes_case("ssdlite_like", ssdlite, (320, 288), [(20, 18), (10, 9), (5, 5), (3, 3), (2, 2), (1, 1)], 3),
    ]
    write("default_boxes.json", OrderedDict(cases=cases))


def random_boxes(generator, n, extent=200.0, min_size=2.0, max_size=80.0):
    xy = torch.rand(n, 2, generator=generator) * extent
    wh = min_size + torch.rand(n, 2, generator=generator) * (max_size - min_size)
    return torch.cat([xy, xy + wh], dim=1)


def make_box_coder():
    g = torch.Generator().manual_seed(1)
    n = 48
    boxes = random_boxes(g, n)
    codes = torch.randn(n, 8, generator=g) * 1.5
    # Large dw / dh that hit the log(1000/16) clamp (also after division by the weights 5).
    codes[::5, 2] = 30.0
    codes[1::7, 7] = 45.0
    codes[2::9, 3] = -12.0
    cases = []
    for weights in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        coder = BoxCoder(weights)
        decoded = coder.decode_single(codes, boxes)
        targets = random_boxes(g, n)
        encoded = coder.encode_single(targets, boxes)
        cases.append(OrderedDict(weights=list(weights), bbox_xform_clip=coder.bbox_xform_clip,
                                 decoded=f32(decoded), targets=f32(targets), encoded=f32(encoded)))
    linear = BoxLinearCoder(normalize_by_size=True)
    linear_codes = torch.rand(n, 4, generator=g) * 3
    linear_targets = random_boxes(g, n)
    linear_plain = BoxLinearCoder(normalize_by_size=False)
    write("box_coder.json", OrderedDict(
        boxes=f32(boxes), codes=f32(codes), box_coder=cases,
        linear=OrderedDict(codes=f32(linear_codes), decoded=f32(linear.decode(linear_codes, boxes)),
                           targets=f32(linear_targets), encoded=f32(linear.encode(boxes, linear_targets)),
                           decoded_unnormalized=f32(linear_plain.decode(linear_codes * 40, boxes)))))


def clustered_boxes(g, n, clusters, extent, jitter, size):
    centres = torch.rand(clusters, 2, generator=g) * extent
    pick = torch.randint(0, clusters, (n,), generator=g)
    centre = centres[pick] + torch.randn(n, 2, generator=g) * jitter
    wh = size * (0.6 + 0.8 * torch.rand(n, 2, generator=g))
    return torch.cat([centre - wh / 2, centre + wh / 2], dim=1)


def unique_scores(g, n):
    scores = torch.rand(n, generator=g)
    assert len(set(scores.tolist())) == n, "tied scores: torch's unstable sort would decide their order"
    return scores


def make_nms():
    g = torch.Generator().manual_seed(2)
    single = []
    boxes = clustered_boxes(g, 240, 12, 300.0, 6.0, 40.0)
    scores = unique_scores(g, 240)
    for threshold in [0.3, 0.5, 0.7]:
        single.append(OrderedDict(iou_threshold=threshold, keep=ints(nms(boxes, scores, threshold))))
    batched = []
    # 300 boxes (numel 1200 <= 4000): the coordinate-offset path; 1100 boxes: the per-class loop.
    for n, clusters, classes, extent in [(300, 10, 5, 800.0), (1100, 20, 12, 600.0)]:
        b = clustered_boxes(g, n, clusters, extent, 5.0, 50.0)
        s = unique_scores(g, n)
        labels = torch.randint(0, classes, (n,), generator=g)
        batched.append(OrderedDict(boxes=f32(b), scores=f32(s), labels=ints(labels), iou_threshold=0.5,
                                   keep=ints(batched_nms(b, s, labels, 0.5))))
    write("nms.json", OrderedDict(boxes=f32(boxes), scores=f32(scores), single=single, batched=batched,
                                  offset_rounding=offset_rounding_case()))


def offset_rounding_case():
    """A pair of label-90 boxes near 400 px whose IoU crosses 0.5 only after the Float32
    coordinate offset (90 * 801): the offset path and the per-class path disagree."""
    g = torch.Generator().manual_seed(0)
    scores = torch.tensor([0.9, 0.8, 0.1])
    labels = torch.tensor([90, 90, 0])
    for _ in range(100000):
        corner = torch.rand(1, 2, generator=g) * 700
        size = 20 + torch.rand(1, 2, generator=g) * 100
        first = torch.cat([corner, corner + size], dim=1)
        second = first + torch.randn(1, 4, generator=g) * 3
        boxes = torch.cat([first, second, torch.tensor([[0.0, 0.0, 800.0, 800.0]])])
        offset = _batched_nms_coordinate_trick(boxes, scores, labels, 0.5)
        per_class = _batched_nms_vanilla(boxes, scores, labels, 0.5)
        if not torch.equal(offset, per_class):
            return OrderedDict(boxes=f32(boxes), scores=f32(scores), labels=ints(labels), iou_threshold=0.5,
                               keep=ints(batched_nms(boxes, scores, labels, 0.5)),
                               keep_offset=ints(offset), keep_per_class=ints(per_class))
    raise RuntimeError("no offset-rounding case found")


def make_roi_align():
    g = torch.Generator().manual_seed(3)
    features = torch.randn(2, 3, 9, 11, generator=g)
    # Image coordinates for spatial_scale 0.5 (an 18 x 22 image): inside, across every border,
    # fully outside, smaller than one feature pixel, and large.
    boxes = torch.tensor([
        [1.0, 2.0, 15.0, 12.0], [0.0, 0.0, 22.0, 18.0], [-6.0, -4.0, 8.0, 7.0], [14.0, 10.0, 27.0, 24.0],
        [3.3, 4.7, 3.9, 5.1], [-9.0, 3.0, -3.0, 9.0], [10.5, 0.25, 21.75, 17.5], [2.0, 15.0, 20.0, 21.0],
        [5.0, 5.0, 6.5, 12.0], [0.7, 0.9, 40.0, 33.0], [7.1, 2.2, 9.9, 16.4], [-2.0, -2.0, 0.5, 0.5],
    ])
    jitter = torch.rand(boxes.shape[0], 4, generator=g) * 0.5
    boxes = boxes + jitter * (boxes[:, 2:3] > boxes[:, 0:1]).float()
    batch_index = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0], dtype=torch.float32)[:, None]
    rois = torch.cat([batch_index, boxes], dim=1)
    cases = []
    for sampling_ratio, aligned, output_size in [(0, False, (3, 4)), (2, False, (3, 4)), (0, True, (3, 4)),
                                                 (2, True, (3, 4)), (-1, False, (7, 7)), (1, True, (2, 5))]:
        pooled = roi_align(features, rois, output_size, spatial_scale=0.5, sampling_ratio=sampling_ratio,
                           aligned=aligned)
        cases.append(OrderedDict(sampling_ratio=sampling_ratio, aligned=aligned, output_size=list(output_size),
                                 spatial_scale=0.5, output=f32(pooled)))
    write("roi_align.json", OrderedDict(feature_shape=list(features.shape), features=f32(features),
                                        rois=f32(rois), cases=cases))


def make_multiscale():
    g = torch.Generator().manual_seed(4)
    # A padded 64 x 96 batch of two images (64 x 90 and 56 x 96), FPN levels at strides 4 to 32.
    image_sizes = [(64, 90), (56, 96)]
    names = ["0", "1", "2", "3"]
    shapes = [(16, 24), (8, 12), (4, 6), (2, 3)]
    features = OrderedDict((name, torch.randn(2, 2, h, w, generator=g)) for name, (h, w) in zip(names, shapes))
    # Boxes of chosen sqrt(area) with random aspect and position; with canonical_scale 28
    # (instead of 224) the levels 2, 3, 4, 5 start at sqrt(area) 0, 14, 28, 56.
    def sized_boxes(sides, extent):
        sides = torch.tensor(sides, dtype=torch.float32)
        aspect = torch.exp((torch.rand(len(sides), generator=g) - 0.5))
        wh = torch.stack([sides * aspect, sides / aspect], dim=1)
        corner = torch.rand(len(sides), 2, generator=g) * extent - 5
        return torch.cat([corner, corner + wh], dim=1)
    boxes = [sized_boxes([4, 9, 13, 15, 20, 27, 30, 40, 55, 58, 64, 70, 12, 35], 60.0),
             sized_boxes([2, 11, 14.5, 26, 29, 50, 57, 80, 6, 22], 50.0)]
    pooler = MultiScaleRoIAlign(names, output_size=(3, 2), sampling_ratio=2, canonical_scale=28)
    pooled = pooler(features, boxes, image_sizes)
    levels = pooler.map_levels(boxes)
    single = MultiScaleRoIAlign(["1"], output_size=3, sampling_ratio=-1)
    pooled_single = single(features, boxes, image_sizes)
    # The default mapper (224, level 4) on FPN levels 2..5 over boxes of many sizes.
    mapper = LevelMapper(2, 5)
    side = torch.exp(torch.rand(200, 2, generator=g) * math.log(1200.0)) + 0.5
    corner = torch.rand(200, 2, generator=g) * 100
    mapper_boxes = torch.cat([corner, corner + side], dim=1)
    write("multiscale_roi_align.json", OrderedDict(
        image_sizes=[list(s) for s in image_sizes],
        feature_shapes=[list(f.shape) for f in features.values()],
        features=[f32(f) for f in features.values()],
        boxes=[f32(b) for b in boxes], box_counts=[b.shape[0] for b in boxes],
        canonical_scale=28, output_size=[3, 2], sampling_ratio=2,
        scales=list(pooler.scales), k_min=pooler.map_levels.k_min, k_max=pooler.map_levels.k_max,
        levels=ints(levels), output=f32(pooled),
        single_level=OrderedDict(feature_index=1, output_size=[3, 3], sampling_ratio=-1,
                                 scales=list(single.scales), output=f32(pooled_single)),
        mapper=OrderedDict(k_min=2, k_max=5, boxes=f32(mapper_boxes), levels=ints(mapper([mapper_boxes]))),
    ))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_anchors()
    make_default_boxes()
    make_box_coder()
    make_nms()
    make_roi_align()
    make_multiscale()
