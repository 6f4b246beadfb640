#!/usr/bin/env python3
"""Writes the SSD / SSDlite / MobileNetV3 / VGG golden fixtures from torchvision 0.14.

Run from the repository root with the reference environment:
    /work/main/.venv-ref/bin/python detectors/tools/make_ssd_goldens.py

Writes Tests/DetectorsTests/Fixtures/ssd/ and Tests/DetectorsTests/Fixtures/ssdlite/:

- `config.json`: the test model's description (detq's config schema).
- `weights.safetensors`: its state dict in F16. Every parameter and buffer was rounded to F16
  before torch ran, so torch and detq run the same values.
- `goldens.safetensors` + `goldens.json`: torch's intermediates for a test-pattern image
  (see `pattern_image`; detq regenerates it bit for bit) and for a small stored image that
  goes through the resize: transformed batch, feature maps, head outputs, default boxes
  (each a strided sample `flat[::stride]`, `stride = ceil(numel / 1024)`, plus its full sum),
  and the detections in full.
- `*_structure.json`: state-dict keys and shapes of the full-size torchvision models
  (ssd300_vgg16, ssdlite320_mobilenet_v3_large, VGG-16 features, MobileNetV3 variants).

The SSD300 test model is torchvision's own SSD, SSDFeatureExtractorVGG, SSDHead and
DefaultBoxGenerator around a VGG-16 `make_layers` stack with every width divided by 32 (the
extractor's hard-coded 512/1024/256/128 layers are swapped for narrowed ones of the same
structure): torchvision's builder has no width option. The SSDlite test model is
`mobilenet_v3_large(width_mult=0.25, reduced_tail=True)` inside torchvision's
SSDLiteFeatureExtractorMobileNet (its own `width_mult=0.125`), SSDLiteHead and SSD, at a
non-square fixed size. Both keep the builders' thresholds; 7 classes keep the heads small.

Weights are seeded random (He-normal convs), batch-norm statistics and affine parameters are
randomized, and each level's predictors are rescaled: logits to a standard deviation of 2
(scores spread without saturating), box codes to 1 (boxes stay near their default boxes).
Rerunning writes identical files.
"""
import json
import math
import os
from collections import OrderedDict
from functools import partial

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small, vgg
from torchvision.models.detection import ssd as ssd_module
from torchvision.models.detection import ssdlite as ssdlite_module
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

torch.set_num_threads(2)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "Tests", "DetectorsTests", "Fixtures")
SAMPLES = 1024
NUM_CLASSES = 7


def pattern_image(channels, height, width):
    """The test pattern detq regenerates: byte `((i * 2654435761) mod 2^32) >> 24` at flat index
    i of `[C, H, W]`, divided by 255 in float32 (torchvision's `to_tensor`)."""
    index = torch.arange(channels * height * width, dtype=torch.int64)
    byte = ((index * 2654435761) % (1 << 32)) >> 24
    return (byte.to(torch.float32) / 255).reshape(channels, height, width)


def stored_image(generator, channels, height, width):
    """A random RGB8 image (smooth blobs plus noise) as integer values, and as [0, 1] floats."""
    coarse = torch.rand(channels, max(2, height // 8), max(2, width // 8), generator=generator)
    smooth = nn.functional.interpolate(coarse[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    noise = torch.rand(channels, height, width, generator=generator) * 0.25
    byte = torch.clamp(torch.round((smooth * 0.8 + noise) * 255), 0, 255)
    return byte, byte / 255


def randomize(model, generator):
    """He-normal convs, small random biases, random batch-norm statistics and affine parameters."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            module.weight.data = torch.randn(module.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in)
            if module.bias is not None:
                module.bias.data = torch.randn(module.bias.shape, generator=generator) * 0.05
        elif isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = torch.rand(c, generator=generator) + 0.5
            module.bias.data = torch.randn(c, generator=generator) * 0.1
            module.running_mean.data = torch.randn(c, generator=generator) * 0.1
            module.running_var.data = torch.rand(c, generator=generator) + 0.5
        elif isinstance(module, nn.Linear):
            module.weight.data = torch.randn(module.weight.shape, generator=generator) / math.sqrt(module.weight.shape[1])
            module.bias.data = torch.randn(module.bias.shape, generator=generator) * 0.05


def final_convs(scoring_head):
    """The last conv of each level's predictor in an SSD(Lite)ScoringHead."""
    return [[m for m in level.modules() if isinstance(m, nn.Conv2d)][-1] for level in scoring_head.module_list]


def rescale_predictors(model, batch, classification_std=2.0, regression_std=1.0):
    """Scales each level's last classification conv so that its logits have a standard
    deviation of `classification_std` (scores spread without saturating), and each level's last
    regression conv to `regression_std` (decoded boxes stay near their default boxes)."""
    with torch.no_grad():
        features = list(model.backbone(batch).values())
        for scoring_head, target in [(model.head.classification_head, classification_std),
                                     (model.head.regression_head, regression_std)]:
            for feature, level, conv in zip(features, scoring_head.module_list, final_convs(scoring_head)):
                factor = target / float(level(feature).std())
                conv.weight.mul_(factor)
                conv.bias.mul_(factor)


def round_to_f16(model):
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


def state_dict_f16(model):
    return OrderedDict((k, v.detach().half().contiguous()) for k, v in model.state_dict().items()
                       if not k.endswith("num_batches_tracked"))


class Goldens:
    def __init__(self):
        self.tensors = OrderedDict()
        self.meta = OrderedDict()

    def sample(self, name, tensor):
        flat = tensor.detach().to(torch.float32).contiguous().view(-1)
        stride = max(1, math.ceil(flat.numel() / SAMPLES))
        self.tensors[name] = flat[::stride].clone()
        self.meta[name] = OrderedDict(shape=list(tensor.shape), stride=stride, sum=float(flat.double().sum()),
                                      abs_sum=float(flat.double().abs().sum()))

    def full(self, name, tensor, dtype=torch.float32):
        self.tensors[name] = tensor.detach().to(dtype).contiguous().clone()
        self.meta[name] = OrderedDict(shape=list(tensor.shape))

    def detections(self, prefix, result):
        self.full(prefix + ".boxes", result["boxes"].reshape(-1, 4))
        self.full(prefix + ".scores", result["scores"])
        self.full(prefix + ".labels", result["labels"].to(torch.float32))

    def write(self, directory, extra):
        save_file(self.tensors, os.path.join(directory, "goldens.safetensors"))
        payload = OrderedDict([("generator", "detectors/tools/make_ssd_goldens.py"), ("torch", torch.__version__),
                               ("torchvision", torchvision.__version__)])
        payload.update(extra)
        payload["tensors"] = self.meta
        with open(os.path.join(directory, "goldens.json"), "w") as f:
            json.dump(payload, f, indent=1)
            f.write("\n")


def record_model(model, pattern, small_byte, small, goldens):
    """Everything the Swift tests compare, for the pattern image (whose transform is the identity
    resize plus normalization) and for the small image (a real resize)."""
    with torch.no_grad():
        images, _ = model.transform([pattern])
        batch = images.tensors
        features = list(model.backbone(batch).values())
        head = model.head(features)
        anchors = model.anchor_generator(images, features)
        detections = model.postprocess_detections(head, anchors, images.image_sizes)[0]
        end_to_end = model([pattern])[0]
        assert torch.equal(end_to_end["boxes"], detections["boxes"]), "pattern image is transformed without resizing"
        goldens.sample("pattern.batch", batch)
        for i, feature in enumerate(features):
            goldens.sample(f"pattern.features.{i}", feature)
        goldens.sample("pattern.bbox_regression", head["bbox_regression"])
        goldens.sample("pattern.cls_logits", head["cls_logits"])
        goldens.sample("pattern.default_boxes", anchors[0])
        goldens.detections("pattern.detections", detections)

        small_images, _ = model.transform([small])
        goldens.full("small.image", small_byte, dtype=torch.float16)  # integers 0...255: exact in F16
        goldens.sample("small.batch", small_images.tensors)
        goldens.detections("small.detections", model([small])[0])
    return dict(pattern_detections=int(detections["scores"].numel()),
                small_detections=int(goldens.tensors["small.detections.scores"].numel()),
                batch_size=list(batch.shape[-2:]))


def structure(model):
    return [[k, list(v.shape)] for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]


def narrow_ssd300(width, num_classes):
    """torchvision's SSD300 with every layer narrowed by `width` (see the module docstring)."""
    def s(c):
        return max(1, round(c * width))

    features = vgg.make_layers([v if v == "M" else s(v) for v in vgg.cfgs["D"]], batch_norm=False)
    extractor = ssd_module.SSDFeatureExtractorVGG(features, highres=False)
    extractor.scale_weight = nn.Parameter(torch.ones(s(512)) * 20)
    extractor.extra[0][7] = nn.Sequential(
        nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=False),
        nn.Conv2d(s(512), s(1024), kernel_size=3, padding=6, dilation=6),
        nn.ReLU(inplace=True),
        nn.Conv2d(s(1024), s(1024), kernel_size=1),
        nn.ReLU(inplace=True),
    )
    for index, (cin, mid, cout, stride, padding) in enumerate(
            [(1024, 256, 512, 2, 1), (512, 128, 256, 2, 1), (256, 128, 256, 1, 0), (256, 128, 256, 1, 0)], start=1):
        extractor.extra[index] = nn.Sequential(
            nn.Conv2d(s(cin), s(mid), kernel_size=1), nn.ReLU(inplace=True),
            nn.Conv2d(s(mid), s(cout), kernel_size=3, padding=padding, stride=stride), nn.ReLU(inplace=True))
    generator = DefaultBoxGenerator([[2], [2, 3], [2, 3], [2, 3], [2], [2]],
                                    scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05], steps=[8, 16, 32, 64, 100, 300])
    return ssd_module.SSD(extractor, generator, (300, 300), num_classes, image_mean=[0.48235, 0.45882, 0.40784],
                          image_std=[1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0])


def small_ssdlite(width, extra_width, size, num_classes):
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    body = mobilenet_v3_large(weights=None, norm_layer=norm_layer, reduced_tail=True, width_mult=width).features
    stage_indices = [0] + [i for i, b in enumerate(body) if getattr(b, "_is_cn", False)] + [len(body) - 1]
    extractor = ssdlite_module.SSDLiteFeatureExtractorMobileNet(body, stage_indices[-2], norm_layer,
                                                                width_mult=extra_width)
    generator = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    out_channels = torchvision.models.detection._utils.retrieve_out_channels(extractor, size)
    head = ssdlite_module.SSDLiteHead(out_channels, generator.num_anchors_per_location(), num_classes, norm_layer)
    return ssd_module.SSD(extractor, generator, size, num_classes, head=head, score_thresh=0.001, nms_thresh=0.55,
                          detections_per_img=300, topk_candidates=300, image_mean=[0.5, 0.5, 0.5],
                          image_std=[0.5, 0.5, 0.5])


def write_json(path, payload, compact=False):
    with open(path, "w") as f:
        json.dump(payload, f, separators=(",", ":")) if compact else json.dump(payload, f, indent=1)
        f.write("\n")


def make_ssd():
    directory = os.path.join(FIXTURES, "ssd")
    os.makedirs(directory, exist_ok=True)
    generator = torch.Generator().manual_seed(300)
    width = 1 / 32
    model = narrow_ssd300(width, NUM_CLASSES).eval()
    randomize(model, generator)
    model.backbone.scale_weight.data = torch.rand(model.backbone.scale_weight.shape, generator=generator) * 20 + 10
    pattern = pattern_image(3, 300, 300)
    rescale_predictors(model, model.transform([pattern])[0].tensors)
    round_to_f16(model)
    save_file(state_dict_f16(model), os.path.join(directory, "weights.safetensors"))
    small_byte, small = stored_image(generator, 3, 45, 60)
    goldens = Goldens()
    info = record_model(model, pattern, small_byte, small, goldens)
    goldens.write(directory, info)
    write_json(os.path.join(directory, "config.json"), OrderedDict([
        ("architecture", "ssd300_vgg16_narrow"), ("family", "ssd"),
        ("backbone", OrderedDict(name="vgg16", width_mult=width)),
        ("num_classes", NUM_CLASSES), ("min_size", 300), ("max_size", 300),
        ("image_mean", [0.48235, 0.45882, 0.40784]), ("image_std", [1.0 / 255.0] * 3),
        ("size_divisible", 1), ("fixed_size", [300, 300]),
        ("score_thresh", 0.01), ("nms_thresh", 0.45), ("detections_per_img", 200), ("topk_candidates", 400),
        ("default_boxes", OrderedDict(aspect_ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]],
                                      scales=[0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05],
                                      steps=[8, 16, 32, 64, 100, 300], clip=True)),
    ]))
    full = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None)
    write_json(os.path.join(directory, "ssd300_vgg16_structure.json"), structure(full), compact=True)
    vgg16_features = vgg.make_layers(vgg.cfgs["D"])
    write_json(os.path.join(directory, "vgg16_features_structure.json"),
               OrderedDict(keys=structure(vgg16_features),
                           pools=[i for i, m in enumerate(vgg16_features) if isinstance(m, nn.MaxPool2d)],
                           ceil_mode=[i for i, m in enumerate(full.backbone.features)
                                      if isinstance(m, nn.MaxPool2d) and m.ceil_mode]))
    print(directory, info)


def make_ssdlite():
    directory = os.path.join(FIXTURES, "ssdlite")
    os.makedirs(directory, exist_ok=True)
    generator = torch.Generator().manual_seed(320)
    width, extra_width, size = 0.25, 0.125, (160, 128)  # size is torchvision's (width, height)
    model = small_ssdlite(width, extra_width, size, NUM_CLASSES).eval()
    randomize(model, generator)
    pattern = pattern_image(3, size[1], size[0])
    rescale_predictors(model, model.transform([pattern])[0].tensors)
    round_to_f16(model)
    save_file(state_dict_f16(model), os.path.join(directory, "weights.safetensors"))
    small_byte, small = stored_image(generator, 3, 50, 72)
    goldens = Goldens()
    info = record_model(model, pattern, small_byte, small, goldens)
    goldens.write(directory, info)
    write_json(os.path.join(directory, "config.json"), OrderedDict([
        ("architecture", "ssdlite_mobilenet_v3_large_narrow"), ("family", "ssdlite"),
        ("backbone", OrderedDict(name="mobilenet_v3_large", width_mult=width, reduced_tail=True, dilated=False,
                                 extra_width_mult=extra_width, min_depth=16, batch_norm_eps=0.001)),
        ("num_classes", NUM_CLASSES), ("min_size", min(size)), ("max_size", max(size)),
        ("image_mean", [0.5, 0.5, 0.5]), ("image_std", [0.5, 0.5, 0.5]),
        ("size_divisible", 1), ("fixed_size", [size[1], size[0]]),
        ("score_thresh", 0.001), ("nms_thresh", 0.55), ("detections_per_img", 300), ("topk_candidates", 300),
        ("default_boxes", OrderedDict(aspect_ratios=[[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95, clip=True)),
    ]))
    full = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    write_json(os.path.join(directory, "ssdlite320_mobilenet_v3_large_structure.json"), structure(full),
               compact=True)

    # MobileNetV3 variants: keys, shapes, _is_cn stages and per-entry widths of `features`.
    variants = []
    for arch, options in [("large", {}), ("large", dict(reduced_tail=True)),
                          ("large", dict(width_mult=0.75, reduced_tail=True, dilated=True)),
                          ("small", {}), ("small", dict(width_mult=0.5, dilated=True))]:
        build = mobilenet_v3_large if arch == "large" else mobilenet_v3_small
        net = build(weights=None, **options)
        variants.append(OrderedDict(
            variant=arch, width_mult=options.get("width_mult", 1.0), reduced_tail=options.get("reduced_tail", False),
            dilated=options.get("dilated", False), keys=structure(net),
            stage_indices=[i for i, b in enumerate(net.features) if getattr(b, "_is_cn", False)],
            feature_channels=[b.out_channels for b in net.features]))
    write_json(os.path.join(directory, "mobilenet_v3_structure.json"), variants, compact=True)

    # A dilated MobileNetV3-Small classifier run end to end (dilation, Small's table, classifier).
    net = mobilenet_v3_small(weights=None, width_mult=0.25, reduced_tail=True, dilated=True, num_classes=10).eval()
    randomize(net, generator)
    round_to_f16(net)
    save_file(state_dict_f16(net), os.path.join(directory, "mobilenet_v3_small_dilated.safetensors"))
    image = pattern_image(3, 64, 64)[None]
    mobile = Goldens()
    with torch.no_grad():
        x = image
        for i, block in enumerate(net.features):
            x = block(x)
            if i in (4, 9, len(net.features) - 1):
                mobile.sample(f"features.{i}", x)
        mobile.full("logits", net(image))
    save_file(mobile.tensors, os.path.join(directory, "mobilenet_v3_small_dilated_goldens.safetensors"))
    write_json(os.path.join(directory, "mobilenet_v3_small_dilated_goldens.json"),
               OrderedDict(generator="detectors/tools/make_ssd_goldens.py", input=[1, 3, 64, 64],
                           width_mult=0.25, reduced_tail=True, dilated=True, num_classes=10,
                           tensors=mobile.meta))
    print(directory, info)


if __name__ == "__main__":
    make_ssd()
    make_ssdlite()
    for name in ("ssd", "ssdlite"):
        total = sum(os.path.getsize(os.path.join(FIXTURES, name, f)) for f in os.listdir(os.path.join(FIXTURES, name)))
        print(f"{name}: {total} bytes")
