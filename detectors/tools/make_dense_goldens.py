#!/usr/bin/env python3
"""Writes the RetinaNet / FCOS / transform goldens (Tests/DetectorsTests/Fixtures/{retinanet,fcos,transform}/)
from torchvision 0.14.

Run from the repository root with the reference environment:
    /work/main/.venv-ref/bin/python detectors/tools/make_dense_goldens.py

Models. Small detectors composed from torchvision's own classes exactly as
detectors/tools/shapes_models.py composes the shipped `<family>_mobilenet_v2_shapes` models
(MobileNetV2 `features` as the body, returned layers 6/13/17, an FPN with LastLevelP6P7), at
width 0.1 and a narrow pyramid so the fixtures stay small:
  retinanet/v1   16-channel FPN, RetinaNetHead without norm (retinanet_resnet50_fpn's head), P6 from P5,
                 FrozenBatchNorm2d body (as the shapes models run)
  retinanet/v2   16-channel FPN, RetinaNetHead with GroupNorm(8) (retinanet_resnet50_fpn_v2's head rules),
                 P6 from C5, nn.BatchNorm2d body
  fcos/fcos      32-channel FPN, FCOSHead(num_convs=3) (GroupNorm(32), as the shapes FCOS), P6 from P5
Weights are seeded random, BatchNorm affine parameters randomized and running statistics set near
each layer's input statistics on the golden batch with random offsets (a random net with arbitrary
statistics is so ill-conditioned that float32 itself drifts 1e-4 from float64), and the final
classification / regression / centre-ness convs rescaled on the golden batch so that scores spread
over the thresholds. Every float parameter is rounded to float16 before torch runs, and stored as
F16 (exactly the values torch used). The state-dict keys and shapes of the full-size builders and
of the shapes models' composition at full width are written too (structure of the shipped configs).

Inputs are made by a formula both sides compute exactly (integer hashing; see `pattern`), so the
fixtures hold no images: `batch` is an already transformed (normalized, zero-padded) tensor, fed
to the model's backbone/head/postprocess directly, and `images` are uint8 pictures fed through
the full model (transform included).

Large tensors are stored as a strided sample (at most SAMPLE values) plus their sum and sum of
absolute values in float64; detections are stored whole.

Everything is seeded; rerunning writes identical files.
"""
import json
import math
import os
from collections import OrderedDict
from functools import partial

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models.detection import (FCOS, RetinaNet, fcos_resnet50_fpn, retinanet_resnet50_fpn,
                                          retinanet_resnet50_fpn_v2)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

torch.set_num_threads(2)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests", "DetectorsTests", "Fixtures")
SAMPLE = 1024
MASK = (1 << 64) - 1
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


# ----------------------------------------------------------------------------- inputs by formula

def mix(a, b, c, d):
    """A 64-bit hash of four non-negative integers (numpy uint64 arrays or ints), wrapping arithmetic.

    z = a·0x9E3779B1 + b·0x85EBCA77 + c·0xC2B2AE3D + d·0x27D4EB2F (mod 2^64);
    z ^= z >> 29; z *= 0xBF58476D1CE4E5B9 (mod 2^64); z ^= z >> 32.
    """
    u = np.uint64
    with np.errstate(over="ignore"):
        z = (u(a) * u(0x9E3779B1) + u(b) * u(0x85EBCA77) + u(c) * u(0xC2B2AE3D) + u(d) * u(0x27D4EB2F))
        z ^= z >> u(29)
        z = z * u(0xBF58476D1CE4E5B9)
        z ^= z >> u(32)
    return z


def pattern(channels, height, width, seed):
    """Integers in [0, 319]: 8×8 blocks (hash % 256) plus per-pixel detail (hash % 64)."""
    c, y, x = np.meshgrid(np.arange(channels, dtype=np.uint64), np.arange(height, dtype=np.uint64),
                          np.arange(width, dtype=np.uint64), indexing="ij")
    blocks = mix(x >> np.uint64(3), y >> np.uint64(3), c, np.uint64(seed)) % np.uint64(256)
    detail = mix(x, y, c, np.uint64(seed + 1)) % np.uint64(64)
    return (blocks + detail).astype(np.int64)


def formula_batch(batch_size, image_sizes, seed):
    """An already transformed batch [N, 3, H, W]: (pattern − 160) / 64 inside each image's size, 0 in the padding."""
    height, width = batch_size
    batch = torch.zeros(len(image_sizes), 3, height, width)
    for n, (h, w) in enumerate(image_sizes):
        values = (pattern(3, h, w, seed + 2 * n).astype(np.float32) - np.float32(160)) / np.float32(64)
        batch[n, :, :h, :w] = torch.from_numpy(values)
    return batch


def formula_image(height, width, seed):
    """A [3, H, W] image in [0, 1]: (pattern % 256) / 255 in float32 (to_tensor of a uint8 image)."""
    values = (pattern(3, height, width, seed) % 256).astype(np.float32) / np.float32(255)
    return torch.from_numpy(values)


# ----------------------------------------------------------------------------- weights

def randomize(model, seed):
    """Seeded random conv/norm parameters and BatchNorm statistics (He-normal convs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.1)
            elif isinstance(module, (nn.BatchNorm2d, FrozenBatchNorm2d)):
                c = module.weight.shape[0]
                module.weight.copy_(0.5 + torch.rand(c, generator=g))
                module.bias.copy_(torch.randn(c, generator=g) * 0.2)
                module.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                module.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(module, nn.GroupNorm):
                c = module.weight.shape[0]
                module.weight.copy_(0.5 + torch.rand(c, generator=g))
                module.bias.copy_(torch.randn(c, generator=g) * 0.2)


def calibrate_batch_norms(model, batch, seed):
    """Sets every batch norm's running statistics near the statistics of its input on `batch`
    (mean + 0.2·std·N(0, 1), var · U(0.7, 1.4)), one layer after another, so that the random
    network stays well conditioned (float32 rounding then stays far below the tolerances)."""
    g = torch.Generator().manual_seed(seed)

    def set_statistics(module, inputs):
        x = inputs[0].detach()
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        c = mean.shape[0]
        module.running_mean.copy_(mean + 0.2 * var.sqrt() * torch.randn(c, generator=g))
        module.running_var.copy_(var * (0.7 + 0.7 * torch.rand(c, generator=g)) + 1e-3)

    hooks = [module.register_forward_pre_hook(set_statistics) for module in model.modules()
             if isinstance(module, (nn.BatchNorm2d, FrozenBatchNorm2d))]
    with torch.no_grad():
        model.backbone(batch)
    for hook in hooks:
        hook.remove()


def rescale_outputs(model, batch, targets):
    """Rescales each conv in `targets` (module → (mean, std)) so that its outputs on `batch` have that mean and std."""
    captured = {}
    hooks = [module.register_forward_hook(
        lambda m, i, o: captured.setdefault(m, []).append(o.detach().flatten())) for module in targets]
    with torch.no_grad():
        features = list(model.backbone(batch).values())
        model.head(features)
        for module, (mean, std) in targets.items():
            values = torch.cat(captured[module])
            scale = std / float(values.std())
            module.weight.mul_(scale)
            module.bias.copy_((module.bias - float(values.mean())) * scale + mean)
    for hook in hooks:
        hook.remove()


def round_to_half(model):
    """Rounds every float parameter and buffer to float16 (torch then runs exactly the stored values)."""
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


def half_state_dict(model):
    return OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------- models

def mobilenet_fpn(width_mult, fpn_channels, p6_from_c5, frozen_norm):
    """shapes_models.py's body: MobileNetV2 `features`, returned layers 6/13/17, FPN + LastLevelP6P7."""
    norm = partial(FrozenBatchNorm2d, eps=1e-5) if frozen_norm else nn.BatchNorm2d
    features = torchvision.models.mobilenet_v2(width_mult=width_mult, norm_layer=norm).features
    returned = [6, 13, 17]
    with torch.no_grad():
        x, channels = torch.zeros(1, 3, 64, 64), []
        for index, layer in enumerate(features):
            x = layer(x)
            if index in returned:
                channels.append(x.shape[1])
    extra = LastLevelP6P7(channels[-1] if p6_from_c5 else fpn_channels, fpn_channels)
    body = BackboneWithFPN(features, return_layers={str(i): str(k) for k, i in enumerate(returned)},
                           in_channels_list=channels, out_channels=fpn_channels, extra_blocks=extra)
    return body, returned, channels


def shapes_retinanet_sizes(bases):
    return [[x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))] for x in bases]


MIN_SIZE, MAX_SIZE = 160, 192
NUM_CLASSES = 5
WIDTH = 0.1


def common_config(architecture, family, returned, channels, fpn, p6_in, eps, **extra):
    config = OrderedDict(
        architecture=architecture, family=family,
        backbone=OrderedDict(name="mobilenet_v2", width_mult=WIDTH, returned_layers=returned, in_channels=channels,
                             fpn_out_channels=fpn, extra_blocks="p6p7", p6p7_in_channels=p6_in,
                             fpn_batch_norm=False, batch_norm_eps=eps),
        num_classes=NUM_CLASSES, min_size=MIN_SIZE, max_size=MAX_SIZE, image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD, size_divisible=32)
    config.update(extra)
    return config


def build_retinanet_v1():
    fpn = 16
    body, returned, channels = mobilenet_fpn(WIDTH, fpn, p6_from_c5=False, frozen_norm=True)
    sizes = shapes_retinanet_sizes([8, 16, 32, 64, 128])
    ratios = [[0.5, 1.0, 2.0]] * 5
    model = RetinaNet(body, NUM_CLASSES, min_size=MIN_SIZE, max_size=MAX_SIZE,
                      anchor_generator=AnchorGenerator(tuple(map(tuple, sizes)), tuple(map(tuple, ratios))),
                      head=RetinaNetHead(fpn, 9, NUM_CLASSES), score_thresh=0.05, nms_thresh=0.5,
                      detections_per_img=300, topk_candidates=150)
    config = common_config("retinanet_mobilenet_v2_test_v1", "retinanet", returned, channels, fpn, fpn, 1e-5,
                           score_thresh=0.05, nms_thresh=0.5, detections_per_img=300, topk_candidates=150,
                           anchor_sizes=sizes, aspect_ratios=ratios,
                           head=OrderedDict(num_convs=4, norm=None, box_coder_weights=[1.0, 1.0, 1.0, 1.0]))
    targets = lambda m: {m.head.classification_head.cls_logits: (-6.0, 1.5),
                         m.head.regression_head.bbox_reg: (0.0, 0.4)}
    return model, config, targets


def build_retinanet_v2():
    fpn = 16
    body, returned, channels = mobilenet_fpn(WIDTH, fpn, p6_from_c5=True, frozen_norm=False)
    sizes = [[16, 20, 25], [32, 40, 50], [64, 80, 101], [128, 161, 203], [256, 322, 406]]
    ratios = [[0.5, 1.0, 2.0]] * 5
    model = RetinaNet(body, NUM_CLASSES, min_size=MIN_SIZE, max_size=MAX_SIZE,
                      anchor_generator=AnchorGenerator(tuple(map(tuple, sizes)), tuple(map(tuple, ratios))),
                      head=RetinaNetHead(fpn, 9, NUM_CLASSES, norm_layer=partial(nn.GroupNorm, 8)),
                      score_thresh=0.05, nms_thresh=0.5, detections_per_img=60, topk_candidates=1000)
    config = common_config("retinanet_mobilenet_v2_test_v2", "retinanet", returned, channels, fpn, channels[-1], 1e-5,
                           score_thresh=0.05, nms_thresh=0.5, detections_per_img=60, topk_candidates=1000,
                           anchor_sizes=sizes, aspect_ratios=ratios,
                           head=OrderedDict(num_convs=4, norm="group_norm", group_norm_groups=8, group_norm_eps=1e-5,
                                            box_coder_weights=[1.0, 1.0, 1.0, 1.0]))
    targets = lambda m: {m.head.classification_head.cls_logits: (-3.5, 1.5),
                         m.head.regression_head.bbox_reg: (0.0, 0.4)}
    return model, config, targets


def build_fcos():
    fpn = 32  # FCOSHead's GroupNorm has 32 groups
    body, returned, channels = mobilenet_fpn(WIDTH, fpn, p6_from_c5=False, frozen_norm=True)
    model = FCOS(body, NUM_CLASSES, min_size=MIN_SIZE, max_size=MAX_SIZE,
                 head=FCOSHead(fpn, 1, NUM_CLASSES, num_convs=3), score_thresh=0.2, nms_thresh=0.6,
                 detections_per_img=100, topk_candidates=1000)
    config = common_config("fcos_mobilenet_v2_test", "fcos", returned, channels, fpn, fpn, 1e-5,
                           score_thresh=0.2, nms_thresh=0.6, detections_per_img=100, topk_candidates=1000,
                           anchor_sizes=[[8.0], [16.0], [32.0], [64.0], [128.0]], aspect_ratios=[[1.0]] * 5,
                           head=OrderedDict(num_convs=3, norm="group_norm", group_norm_groups=32, group_norm_eps=1e-5,
                                            normalize_by_size=True))
    targets = lambda m: {m.head.classification_head.cls_logits: (-2.5, 1.5),
                         m.head.regression_head.bbox_ctrness: (0.5, 1.5),
                         m.head.regression_head.bbox_reg: (0.8, 0.8)}
    return model, config, targets


# ----------------------------------------------------------------------------- goldens

class Golden:
    """Tensors for one safetensors file plus a JSON description of the sampled ones."""

    def __init__(self):
        self.tensors = OrderedDict()
        self.meta = OrderedDict()

    def sampled(self, name, tensor):
        flat = tensor.detach().to(torch.float32).contiguous().view(-1)
        stride = max(1, math.ceil(flat.numel() / SAMPLE))
        self.tensors[name] = flat[::stride].clone()
        as64 = flat.double()
        self.meta[name] = OrderedDict(shape=list(tensor.shape), stride=stride, sum=float(as64.sum()),
                                      abs_sum=float(as64.abs().sum()))

    def whole(self, name, tensor):
        self.tensors[name] = tensor.detach().to(torch.float32).contiguous().clone()

    def detections(self, prefix, results):
        for n, result in enumerate(results):
            self.whole(f"{prefix}.{n}.boxes", result["boxes"].reshape(-1, 4))
            self.whole(f"{prefix}.{n}.scores", result["scores"])
            self.whole(f"{prefix}.{n}.labels", result["labels"].to(torch.float32))

    def write(self, directory, stem, extra_meta):
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{stem}_golden.safetensors")
        save_file(dict(self.tensors), path)
        meta = OrderedDict([("generator", "detectors/tools/make_dense_goldens.py"), ("torch", torch.__version__),
                            ("torchvision", torchvision.__version__), ("sample", SAMPLE)])
        meta.update(extra_meta)
        meta["sampled"] = self.meta
        with open(os.path.join(directory, f"{stem}_golden.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        print(f"{path}: {os.path.getsize(path)} bytes")


BATCH_SIZE = (160, 192)
IMAGE_SIZES = [(160, 180), (128, 192)]
BATCH_SEED = 11
IMAGES = [((120, 170), 21), ((150, 100), 23)]


def make_model_golden(directory, stem, build, seed):
    os.makedirs(directory, exist_ok=True)
    model, config, targets = build()
    model.eval()
    randomize(model, seed)
    batch = formula_batch(BATCH_SIZE, IMAGE_SIZES, BATCH_SEED)
    calibrate_batch_norms(model, batch, seed)
    rescale_outputs(model, batch, targets(model))
    round_to_half(model)

    golden = Golden()
    with torch.no_grad():
        body = model.backbone.body(batch)
        for i, value in enumerate(body.values()):
            golden.sampled(f"body.{i}", value)
        features = model.backbone.fpn(body)
        features = list(features.values())
        for i, value in enumerate(features):
            golden.sampled(f"fpn.{i}", value)
        head = model.head(features)
        for key, value in head.items():
            golden.sampled(f"head.{key}", value)
        images = ImageList(batch, IMAGE_SIZES)
        anchors = model.anchor_generator(images, features)
        counts = [f.shape[2] * f.shape[3] for f in features]
        per_location = head["cls_logits"].shape[1] // sum(counts)
        counts = [c * per_location for c in counts]
        split = {k: list(v.split(counts, dim=1)) for k, v in head.items()}
        split_anchors = [list(a.split(counts)) for a in anchors]
        detections = model.postprocess_detections(split, split_anchors, IMAGE_SIZES)
        golden.detections("batch", detections)
        end_to_end = model([formula_image(h, w, s) for (h, w), s in IMAGES])
        golden.detections("images", end_to_end)

    counts = [len(d["scores"]) for d in detections] + [len(d["scores"]) for d in end_to_end]
    print(f"{stem}: detections (batch, images) {counts}; logits mean {float(head['cls_logits'].mean()):.2f} "
          f"std {float(head['cls_logits'].std()):.2f}; fpn abs means "
          f"{[round(float(f.abs().mean()), 3) for f in features]}")
    with open(os.path.join(directory, f"{stem}_config.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    save_file(dict(half_state_dict(model)), os.path.join(directory, f"{stem}_weights.safetensors"))
    golden.write(directory, stem, OrderedDict(
        config=f"{stem}_config.json", weights=f"{stem}_weights.safetensors",
        batch=OrderedDict(size=list(BATCH_SIZE), image_sizes=[list(s) for s in IMAGE_SIZES], seed=BATCH_SEED),
        images=[OrderedDict(height=h, width=w, seed=s) for (h, w), s in IMAGES],
        detections_batch=[len(d["scores"]) for d in detections],
        detections_images=[len(d["scores"]) for d in end_to_end]))


def make_structure(directory, name, builder):
    """Keys and shapes of the full-size builder's state dict (the shipped config must build them)."""
    os.makedirs(directory, exist_ok=True)
    model = builder(weights=None, weights_backbone=None)
    keys = OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items()
                       if not k.endswith("num_batches_tracked"))
    with open(os.path.join(directory, f"{name}_keys.json"), "w") as f:
        json.dump(OrderedDict(builder=name, torchvision=torchvision.__version__, keys=keys), f, separators=(",", ":"))
        f.write("\n")


def make_shapes_structure(directory, family):
    """The shipped `<family>_mobilenet_v2_shapes` composition at its real width (MobileNetV2 1.0,
    64-channel FPN, 9 classes; shapes_models.py): the torchvision keys and shapes, and the detq
    config that must build them."""
    os.makedirs(directory, exist_ok=True)
    body, returned, channels = mobilenet_fpn(1.0, 64, p6_from_c5=False, frozen_norm=True)
    if family == "fcos":
        model = FCOS(body, 9, head=FCOSHead(64, 1, 9, num_convs=3))
        config = common_config("fcos_mobilenet_v2_shapes", "fcos", returned, channels, 64, 64, 1e-5,
                               score_thresh=0.2, nms_thresh=0.6, detections_per_img=100, topk_candidates=1000,
                               anchor_sizes=[[8.0], [16.0], [32.0], [64.0], [128.0]], aspect_ratios=[[1.0]] * 5,
                               head=OrderedDict(num_convs=3, norm="group_norm", group_norm_groups=32))
    else:
        sizes = shapes_retinanet_sizes([8, 16, 32, 64, 128])
        model = RetinaNet(body, 9, head=RetinaNetHead(64, 9, 9),
                          anchor_generator=AnchorGenerator(tuple(map(tuple, sizes)), ((0.5, 1.0, 2.0),) * 5))
        config = common_config("retinanet_mobilenet_v2_shapes", "retinanet", returned, channels, 64, 64, 1e-5,
                               score_thresh=0.05, nms_thresh=0.5, detections_per_img=300, topk_candidates=1000,
                               anchor_sizes=sizes, aspect_ratios=[[0.5, 1.0, 2.0]] * 5,
                               head=OrderedDict(num_convs=4, norm=None))
    config["num_classes"] = 9
    config["backbone"]["width_mult"] = 1.0
    config["min_size"] = config["max_size"] = 256
    name = f"shapes_{family}"
    keys = OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items()
                       if not k.endswith("num_batches_tracked"))
    with open(os.path.join(directory, f"{name}_keys.json"), "w") as f:
        json.dump(OrderedDict(builder="detectors/tools/shapes_models.py composition", keys=keys), f,
                  separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(directory, f"{name}_config.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")


def make_transform_golden(directory):
    """GeneralizedRCNNTransform on formula images, and resize_boxes back to the original size."""
    cases = [
        ("small", 160, 192, [((120, 170), 21), ((150, 100), 23)]),
        ("coco", 800, 1333, [((480, 640), 31)]),
        ("max_bound", 800, 1000, [((300, 900), 33), ((427, 640), 35)]),
    ]
    golden = Golden()
    meta = []
    for name, min_size, max_size, images in cases:
        transform = GeneralizedRCNNTransform(min_size, max_size, IMAGENET_MEAN, IMAGENET_STD)
        transform.eval()
        tensors = [formula_image(h, w, s) for (h, w), s in images]
        with torch.no_grad():
            batch, _ = transform(tensors)
        golden.sampled(f"{name}.batch", batch.tensors)
        # a few boxes in the resized frame, back to the originals as transform.postprocess does
        boxes = torch.tensor([[0.0, 0.0, 10.5, 20.25], [3.75, 7.0, 100.0, 60.5], [33.0, 1.5, 47.125, 99.0]])
        results = transform.postprocess([{"boxes": boxes.clone()} for _ in tensors], batch.image_sizes,
                                        [(h, w) for (h, w), _ in images])
        for n, result in enumerate(results):
            golden.whole(f"{name}.{n}.rescaled", result["boxes"])
        meta.append(OrderedDict(name=name, min_size=min_size, max_size=max_size,
                                images=[OrderedDict(height=h, width=w, seed=s) for (h, w), s in images],
                                image_sizes=[list(s) for s in batch.image_sizes], boxes=boxes.tolist()))
    golden.write(directory, "transform", OrderedDict(cases=meta))


def main():
    retinanet = os.path.join(FIXTURES, "retinanet")
    fcos = os.path.join(FIXTURES, "fcos")
    make_model_golden(retinanet, "v1", build_retinanet_v1, seed=1)
    make_model_golden(retinanet, "v2", build_retinanet_v2, seed=2)
    make_model_golden(fcos, "fcos", build_fcos, seed=3)
    make_structure(retinanet, "retinanet_resnet50_fpn", retinanet_resnet50_fpn)
    make_structure(retinanet, "retinanet_resnet50_fpn_v2", retinanet_resnet50_fpn_v2)
    make_structure(fcos, "fcos_resnet50_fpn", fcos_resnet50_fpn)
    make_shapes_structure(retinanet, "retinanet")
    make_shapes_structure(fcos, "fcos")
    make_transform_golden(os.path.join(FIXTURES, "transform"))
    for directory in (retinanet, fcos, os.path.join(FIXTURES, "transform")):
        total = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
        print(f"{directory}: {total} bytes")


if __name__ == "__main__":
    main()
