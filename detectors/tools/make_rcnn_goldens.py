#!/usr/bin/env python3
"""Writes the Faster R-CNN test fixtures: tiny torchvision FasterRCNN models with seeded random
weights, their intermediates and detections (torch 1.13 / torchvision 0.14 are the reference).

Run from anywhere with the reference environment:
    /work/main/.venv-ref/bin/python detectors/tools/make_rcnn_goldens.py
Outputs go to Tests/DetectorsTests/Fixtures/rcnn/<fixture>/:
    config.json          the detq config of the model (read with --config / DetectorConfig)
    weights.safetensors  the state dict (F32)
    golden.safetensors   intermediates and detections (F32; labels stored as F32)
    golden.json          what the golden holds: batch and image sizes, counts

Each model is composed as torchvision composes its builders, at reduced widths so the fixtures
stay small: a MobileNetV2 (width 0.25) body cut after features[10], returning features 3, 6, 10
(strides 4, 8, 16) into an FPN of 8 channels plus LastLevelMaxPool, or (mobilenet_v3) a
MobileNetV3-Large (width 0.5) body cut after features[7], returning features 4 and 7.
  v1: FPN without norm, RPNHead(conv_depth=1), TwoMLPHead, FastRCNNPredictor
      (as fasterrcnn_resnet50_fpn / fasterrcnn_mobilenet_v3_large_fpn);
  v2: FPN with BatchNorm2d, RPNHead(conv_depth=2), FastRCNNConvFCHead with BatchNorm2d
      (as fasterrcnn_resnet50_fpn_v2);
  mobilenet_v3: as v1 on the MobileNetV3 body, three anchor sizes per level, rpn_score_thresh
      0.05 and featmap names the pyramid partly lacks (as fasterrcnn_mobilenet_v3_large_fpn).
Batch norms get random statistics and affine parameters; the RPN predictors and the class
layer are rescaled so that objectness and class scores spread without saturating.

The detector input is an integer pattern (no resize involved) so Swift rebuilds it exactly:
    p(n, c, y, x) = (x*(c+3) + y*(2n+5) + ((x//7) ^ (y//5))*11 + c*37) % 256
    batch[n, c, y, x] = (p - 128) / 64 inside image n's size, 0 in the padding.
The full pipeline (transform included) runs on images [3, H, W] with values p / 255.
"""
import json
import os
from collections import OrderedDict

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RPNHead, concat_box_prediction_layers
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

torch.set_num_threads(2)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "Tests", "DetectorsTests", "Fixtures", "rcnn")

WIDTH_MULT = 0.25
RETURN_INDICES = [3, 6, 10]
FPN_CHANNELS = 8
NUM_CLASSES = 11
REPRESENTATION = 32
MIN_SIZE, MAX_SIZE = 96, 128
# Image sizes after the transform (the batch pads them to 128 x 128); v2 uses the first only.
BATCH_IMAGE_SIZES = [(96, 128), (128, 93)]
# Original image sizes of the full-pipeline run (they resize to the sizes above).
ORIGINAL_SIZES = [(90, 120), (110, 80)]
IMAGES = {"v1": 2, "v2": 1, "mobilenet_v3": 1}
ANCHOR_SIZES = ((16,), (32,), (64,), (128,))
ASPECT_RATIOS = ((0.5, 1.0, 2.0),) * 4
# mobilenet_v3: MobileNetV3-Large (width 0.5) features cut after 7, returning 4 and 7 (strides
# 8, 16: torchvision's stages 2 and 3) plus "pool"; several anchor sizes per level as
# fasterrcnn_mobilenet_v3_large_fpn; rpn_score_thresh 0.05; featmap names "0"…"3" of which the
# pyramid has "0" and "1" only.
V3_WIDTH_MULT = 0.5
V3_RETURN_INDICES = [4, 7]
V3_ANCHOR_SIZES = ((16, 32, 64),) * 3
V3_ASPECT_RATIOS = ((0.5, 1.0, 2.0),) * 3
PRE_NMS, POST_NMS = 200, 100
DETECTIONS_PER_IMAGE = 50


def pattern(n, c, h, w):
    y = torch.arange(h).view(h, 1)
    x = torch.arange(w).view(1, w)
    return (x * (c + 3) + y * (2 * n + 5) + torch.bitwise_xor(x // 7, y // 5) * 11 + c * 37) % 256


def detector_batch(count):
    sizes = BATCH_IMAGE_SIZES[:count]
    # padded to multiples of 32, as GeneralizedRCNNTransform's batch_images
    height = -(-max(h for h, _ in sizes) // 32) * 32
    width = -(-max(w for _, w in sizes) // 32) * 32
    batch = torch.zeros(count, 3, height, width)
    for n, (h, w) in enumerate(sizes):
        for c in range(3):
            batch[n, c, :h, :w] = (pattern(n, c, h, w).float() - 128) / 64
    return batch


def original_images(count):
    return [torch.stack([pattern(n, c, h, w).float() / 255 for c in range(3)])
            for n, (h, w) in enumerate(ORIGINAL_SIZES[:count])]


def build(variant, seed):
    torch.manual_seed(seed)
    v2, v3 = variant == "v2", variant == "mobilenet_v3"
    if v3:
        # as the builder: nn.BatchNorm2d (eps 1e-5) passed as norm_layer when nothing is pretrained
        features = torchvision.models.mobilenet_v3_large(width_mult=V3_WIDTH_MULT, norm_layer=nn.BatchNorm2d).features
        indices = V3_RETURN_INDICES
    else:
        features = torchvision.models.mobilenet_v2(width_mult=WIDTH_MULT).features
        indices = RETURN_INDICES
    in_channels = [features[i].out_channels for i in indices]
    return_layers = {str(index): str(level) for level, index in enumerate(indices)}
    backbone = BackboneWithFPN(features, return_layers, in_channels, FPN_CHANNELS, extra_blocks=LastLevelMaxPool(),
                               norm_layer=nn.BatchNorm2d if v2 else None)
    anchors = AnchorGenerator(V3_ANCHOR_SIZES, V3_ASPECT_RATIOS) if v3 else AnchorGenerator(ANCHOR_SIZES, ASPECT_RATIOS)
    rpn_head = RPNHead(FPN_CHANNELS, anchors.num_anchors_per_location()[0], conv_depth=2 if v2 else 1)
    if v2:
        box_head = FastRCNNConvFCHead((FPN_CHANNELS, 7, 7), [FPN_CHANNELS] * 4, [REPRESENTATION],
                                      norm_layer=nn.BatchNorm2d)
    else:
        box_head = TwoMLPHead(FPN_CHANNELS * 7 * 7, REPRESENTATION)
    model = FasterRCNN(
        backbone, num_classes=None, min_size=MIN_SIZE, max_size=MAX_SIZE,
        rpn_anchor_generator=anchors, rpn_head=rpn_head,
        rpn_pre_nms_top_n_test=PRE_NMS, rpn_post_nms_top_n_test=POST_NMS,
        rpn_score_thresh=0.05 if v3 else 0.0,
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"] if v3 else ["0", "1", "2"], output_size=7,
                                        sampling_ratio=2),
        box_head=box_head, box_predictor=FastRCNNPredictor(REPRESENTATION, NUM_CLASSES),
        box_detections_per_img=DETECTIONS_PER_IMAGE)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        # Spread the objectness and the deltas (torchvision initialises them at std 0.01).
        for conv in rpn_head.conv.modules():
            if isinstance(conv, nn.Conv2d):
                conv.bias.normal_(0, 0.1)
        rpn_head.cls_logits.weight.normal_(0, 2.0)
        rpn_head.cls_logits.bias.normal_(-3.0 if v3 else 0.0, 0.5)  # v3: some below rpn_score_thresh
        rpn_head.bbox_pred.weight.normal_(0, 0.1)
        model.roi_heads.box_predictor.cls_score.weight.mul_(12)
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(2)
    model.eval()
    return model


def json_text(value, level=0):
    """JSON with one line per list of numbers or strings (the layout of detectors/*/config.json)."""
    pad = "  " * (level + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {json_text(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list) and any(isinstance(e, dict) for e in value):
        return "[\n" + ",\n".join(pad + json_text(e, level + 1) for e in value) + "\n" + "  " * level + "]"
    return json.dumps(value)


def config(variant):
    v2, v3 = variant == "v2", variant == "mobilenet_v3"
    roi = {
        "box_head": "conv_fc" if v2 else "two_mlp",
        "representation_size": REPRESENTATION,
        "sampling_ratio": 2,
        "output_size": 7,
        "featmap_names": ["0", "1", "2", "3"] if v3 else ["0", "1", "2"],
        "box_coder_weights": [10.0, 10.0, 5.0, 5.0],
    }
    if v2:
        roi.update({"conv_layers": [FPN_CHANNELS] * 4, "fc_layers": [REPRESENTATION], "conv_batch_norm": True})
    return OrderedDict([
        ("architecture", f"fasterrcnn_tiny_{variant}"),
        ("family", "fasterrcnn"),
        ("backbone", OrderedDict([
            ("name", "mobilenet_v3_large" if v3 else "mobilenet_v2"), ("width_mult", V3_WIDTH_MULT if v3 else WIDTH_MULT),
            ("returned_layers", V3_RETURN_INDICES if v3 else RETURN_INDICES),
            ("fpn_out_channels", FPN_CHANNELS), ("extra_blocks", "maxpool"), ("fpn_batch_norm", v2),
            ("batch_norm_eps", 1e-5)])),
        ("num_classes", NUM_CLASSES),
        ("min_size", MIN_SIZE), ("max_size", MAX_SIZE),
        ("image_mean", [0.485, 0.456, 0.406]), ("image_std", [0.229, 0.224, 0.225]),
        ("size_divisible", 32),
        ("score_thresh", 0.05), ("nms_thresh", 0.5), ("detections_per_img", DETECTIONS_PER_IMAGE),
        ("anchor_sizes", [list(s) for s in (V3_ANCHOR_SIZES if v3 else ANCHOR_SIZES)]),
        ("aspect_ratios", [list(r) for r in (V3_ASPECT_RATIOS if v3 else ASPECT_RATIOS)]),
        ("rpn", OrderedDict([("pre_nms_top_n_test", PRE_NMS), ("post_nms_top_n_test", POST_NMS),
                             ("nms_thresh", 0.7), ("score_thresh", 0.05 if v3 else 0.0),
                             ("conv_depth", 2 if v2 else 1)])),
        ("roi_heads", roi),
    ])


@torch.no_grad()
def goldens(model, count):
    out = OrderedDict()
    meta = OrderedDict()
    batch = detector_batch(count)
    images = ImageList(batch, BATCH_IMAGE_SIZES[:count])
    features = model.backbone(batch)
    levels = list(features.values())
    meta["levels"] = list(features.keys())
    for name, level in features.items():
        out[f"features.{name}"] = level
    # RegionProposalNetwork.forward, step by step, to keep the head outputs and scores.
    rpn = model.rpn
    objectness, deltas = rpn.head(levels)
    for index, (o, d) in enumerate(zip(objectness, deltas)):
        out[f"rpn.objectness.{index}"] = o
        out[f"rpn.deltas.{index}"] = d
    anchors = rpn.anchor_generator(images, levels)
    per_level = [o[0].numel() for o in objectness]
    flat_objectness, flat_deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(flat_deltas, anchors).view(len(anchors), -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, flat_objectness, images.image_sizes, per_level)
    reference, _ = rpn(images, features)
    assert all(torch.equal(a, b) for a, b in zip(boxes, reference)), "step-by-step RPN differs from rpn()"
    for n, (b, s) in enumerate(zip(boxes, scores)):
        out[f"proposals.{n}"] = b
        out[f"proposal_scores.{n}"] = s
    meta["proposal_counts"] = [int(b.shape[0]) for b in boxes]
    meta["candidates_per_level"] = [min(PRE_NMS, n) for n in per_level]
    # RoIHeads.forward at inference.
    heads = model.roi_heads
    pooled = heads.box_roi_pool(features, boxes, images.image_sizes)
    box_features = heads.box_head(pooled)
    class_logits, box_regression = heads.box_predictor(box_features)
    out["box_features"] = box_features
    out["class_logits"] = class_logits
    out["box_regression"] = box_regression
    detections, _ = heads(features, boxes, images.image_sizes)
    for n, d in enumerate(detections):
        out[f"detections.{n}.boxes"] = d["boxes"]
        out[f"detections.{n}.scores"] = d["scores"]
        out[f"detections.{n}.labels"] = d["labels"].float()
    meta["detection_counts"] = [int(d["scores"].numel()) for d in detections]
    # The whole model on original images: transform, network, rescale.
    full = model(original_images(count))
    for n, d in enumerate(full):
        out[f"full.{n}.boxes"] = d["boxes"]
        out[f"full.{n}.scores"] = d["scores"]
        out[f"full.{n}.labels"] = d["labels"].float()
    meta["full_detection_counts"] = [int(d["scores"].numel()) for d in full]
    meta["batch_shape"] = list(batch.shape)
    meta["batch_image_sizes"] = BATCH_IMAGE_SIZES[:count]
    meta["original_sizes"] = ORIGINAL_SIZES[:count]
    probabilities = torch.softmax(class_logits, -1)[:, 1:]
    meta["class_probability_range"] = [float(probabilities.min()), float(probabilities.max())]
    meta["objectness_range"] = [float(min(o.min() for o in objectness)), float(max(o.max() for o in objectness))]
    return out, meta


def main():
    for seed, variant in enumerate(["v1", "v2", "mobilenet_v3"]):
        folder = os.path.join(OUT, variant)
        os.makedirs(folder, exist_ok=True)
        model = build(variant, seed)
        state = OrderedDict((k, v.contiguous()) for k, v in model.state_dict().items())
        save_file(state, os.path.join(folder, "weights.safetensors"))
        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write(json_text(config(variant)) + "\n")
        out, meta = goldens(model, IMAGES[variant])
        save_file(OrderedDict((k, v.contiguous().float()) for k, v in out.items()),
                  os.path.join(folder, "golden.safetensors"))
        meta["parameters"] = sum(v.numel() for v in state.values())
        with open(os.path.join(folder, "golden.json"), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        print(variant, json.dumps(meta))
        for name in ["weights.safetensors", "golden.safetensors"]:
            print(f"  {name}: {os.path.getsize(os.path.join(folder, name)) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
