"""Builds the small `<family>_mobilenet_v2_shapes` detectors from torchvision 0.14 classes, from config.json data.

The config is the whole architecture as data (see default_config); build_model reads nothing else,
so a reimplementation that follows the config rebuilds exactly this module tree and these
state_dict keys. Used by train_shapes.py (training, BatchNorm trainable) and eval_shapes_torch.py
(inference, FrozenBatchNorm2d with the same keys).
"""

import json
import math
from collections import OrderedDict
from functools import partial

import torch
from torch import nn
import torchvision
from torchvision.models.detection.faster_rcnn import FasterRCNN
from torchvision.models.detection.fcos import FCOS
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.ssdlite import SSDLiteHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7
from torchvision.ops.misc import Conv2dNormActivation, FrozenBatchNorm2d

FAMILIES = ("fcos", "retinanet", "ssdlite", "fasterrcnn")

CATEGORIES = [
    {"id": 1, "name": "circle"}, {"id": 2, "name": "square"}, {"id": 3, "name": "triangle"},
    {"id": 4, "name": "star"}, {"id": 5, "name": "cross"}, {"id": 6, "name": "hexagon"},
    {"id": 7, "name": "ring"}, {"id": 8, "name": "diamond"},
]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
IMAGE_SIZE = 256


def _retinanet_anchor_sizes(bases):
    # torchvision's retinanet rule: (x, int(x * 2^(1/3)), int(x * 2^(2/3))) per level
    return [[x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))] for x in bases]


def default_config(family):
    """The architecture of `<family>_mobilenet_v2_shapes` as data (written to config.json)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    common = {
        "name": f"{family}_mobilenet_v2_shapes",
        "family": family,
        "num_classes": 9,
        "categories": CATEGORIES,
        "label_to_category_id": {str(c["id"]): c["id"] for c in CATEGORIES},
        "transform": {
            "min_size": IMAGE_SIZE, "max_size": IMAGE_SIZE,
            "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD,
            "size_divisible": 32, "fixed_size": None,
            "resize_mode": "bilinear, scale = min(min_size / min(h, w), max_size / max(h, w)), as GeneralizedRCNNTransform",
        },
    }
    mobilenet = {"name": "mobilenet_v2", "width_mult": 1.0, "round_nearest": 8, "activation": "relu6",
                 "module": "features"}
    fpn_layers = {"inner_block": "conv1x1(in_channels[i], out_channels) with bias, no norm",
                  "layer_block": "conv3x3(out_channels, out_channels, padding 1) with bias, no norm",
                  "top_down": "nearest-neighbour upsample of the coarser inner result to the lateral size, added"}
    fpn_backbone = {
        **mobilenet,
        "norm_layer": "frozen_batch_norm_2d", "batch_norm_eps": 1e-5,
        "return_layers": {"6": "0", "13": "1", "17": "2"},
        "in_channels_list": [32, 96, 320], "strides": [8, 16, 32],
        "frozen_during_training": "features.0-3 (parameters and BatchNorm statistics)",
    }
    if family == "fcos":
        return {
            **common,
            "backbone": fpn_backbone,
            "fpn": {"out_channels": 64, "norm_layer": None, **fpn_layers,
                    "extra_blocks": {"type": "last_level_p6p7", "in_channels": 64, "out_channels": 64, "use_p5": True,
                                     "layout": "p6 = conv3x3 stride 2 (P5); p7 = conv3x3 stride 2 (relu(p6)); with bias"},
                    "output_names": ["0", "1", "2", "p6", "p7"], "strides": [8, 16, 32, 64, 128]},
            "anchor_generator": {"type": "anchor_generator", "sizes": [[8], [16], [32], [64], [128]],
                                 "aspect_ratios": [[1.0]] * 5},
            "head": {"type": "fcos_head", "in_channels": 64, "num_anchors": 1, "num_convs": 3,
                     "norm_layer": "group_norm", "group_norm_num_groups": 32, "group_norm_eps": 1e-5,
                     "prior_probability": 0.01},
            "box_coder": {"type": "box_linear_coder", "normalize_by_size": True},
            "center_sampling_radius": 1.5,
            "score_thresh": 0.2, "nms_thresh": 0.6, "detections_per_img": 100, "topk_candidates": 1000,
        }
    if family == "retinanet":
        return {
            **common,
            "backbone": fpn_backbone,
            "fpn": {"out_channels": 64, "norm_layer": None, **fpn_layers,
                    "extra_blocks": {"type": "last_level_p6p7", "in_channels": 64, "out_channels": 64, "use_p5": True,
                                     "layout": "p6 = conv3x3 stride 2 (P5); p7 = conv3x3 stride 2 (relu(p6)); with bias"},
                    "output_names": ["0", "1", "2", "p6", "p7"], "strides": [8, 16, 32, 64, 128]},
            "anchor_generator": {"type": "anchor_generator", "sizes": [[32], [64], [128], [256], [512]],
                                 "aspect_ratios": [[1.0]] * 5},
            "head": {"type": "retinanet_head", "version": "v2", "in_channels": 64, "num_anchors": 1, "num_convs": 4,
                     "norm_layer": "group_norm", "group_norm_num_groups": 32, "group_norm_eps": 1e-5,
                     "prior_probability": 0.01, "regression_loss": "giou"},
            "box_coder": {"type": "box_coder", "weights": [1.0, 1.0, 1.0, 1.0], "bbox_xform_clip": math.log(1000.0 / 16)},
            "fg_iou_thresh": 0.5, "bg_iou_thresh": 0.4, "allow_low_quality_matches": True,
            "training_matcher": {"type": "atss", "topk": 15},
            "score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_img": 300, "topk_candidates": 1000,
        }
    if family == "ssdlite":
        config = {
            **common,
            "backbone": {
                **mobilenet,
                "type": "ssdlite_mobilenet_v2_extractor",
                "norm_layer": "frozen_batch_norm_2d", "batch_norm_eps": 1e-5,
                "stages": [[0, 7], [7, 14], [14, 19]],
                "stage_out_channels": [32, 96, 1280],
                "extra_blocks": [
                    {"in_channels": 1280, "out_channels": 256},
                    {"in_channels": 256, "out_channels": 128},
                    {"in_channels": 128, "out_channels": 128},
                ],
                "extra_block_layout": ("conv1x1(in, out // 2) + BN + ReLU6, depthwise conv3x3(out // 2, stride 2, padding 1) "
                                       "+ BN + ReLU6, conv1x1(out // 2, out) + BN + ReLU6; convs without bias"),
                "extra_batch_norm_eps": 1e-3,
                "out_channels": [32, 96, 1280, 256, 128, 128], "strides": [8, 16, 32, 64, 128, 256],
                "frozen_during_training": "features.0-3 (parameters and BatchNorm statistics)",
            },
            "anchor_generator": {"type": "default_box_generator", "aspect_ratios": [[2, 3]] * 6,
                                 "scales": [0.05, 0.1, 0.2, 0.35, 0.55, 0.75, 0.95], "steps": None, "clip": True},
            "head": {"type": "ssdlite_head", "in_channels": [32, 96, 1280, 256, 128, 128], "num_anchors": [6] * 6,
                     "norm_layer": "frozen_batch_norm_2d", "batch_norm_eps": 1e-3,
                     "prediction_block": "depthwise conv3x3(c, c) + BN + ReLU6, then conv1x1(c, anchors * k) with bias"},
            "box_coder": {"type": "box_coder", "weights": [10.0, 10.0, 5.0, 5.0], "bbox_xform_clip": math.log(1000.0 / 16)},
            "size": [IMAGE_SIZE, IMAGE_SIZE],
            "iou_thresh": 0.5, "positive_fraction": 0.25,
            "score_thresh": 0.001, "nms_thresh": 0.55, "detections_per_img": 300, "topk_candidates": 300,
        }
        config["transform"] = {**config["transform"], "size_divisible": 1, "fixed_size": [IMAGE_SIZE, IMAGE_SIZE],
                               "resize_mode": "bilinear to fixed_size (height, width), as GeneralizedRCNNTransform"}
        return config
    # fasterrcnn
    return {
        **common,
        "backbone": fpn_backbone,
        "fpn": {"out_channels": 64, "norm_layer": None, **fpn_layers,
                "extra_blocks": {"type": "last_level_max_pool", "layout": "pool = max_pool2d(output '2' (stride 32), kernel 1, stride 2, padding 0)"},
                "output_names": ["0", "1", "2", "pool"], "strides": [8, 16, 32, 64]},
        "rpn": {
            "anchor_generator": {"type": "anchor_generator", "sizes": [[16], [32], [64], [128]],
                                 "aspect_ratios": [[0.5, 1.0, 2.0]] * 4},
            "head": {"type": "rpn_head", "in_channels": 64, "num_anchors": 3, "conv_depth": 1},
            "box_coder_weights": [1.0, 1.0, 1.0, 1.0],
            "pre_nms_top_n_train": 1000, "post_nms_top_n_train": 500,
            "pre_nms_top_n_test": 1000, "post_nms_top_n_test": 1000,
            "nms_thresh": 0.7, "fg_iou_thresh": 0.7, "bg_iou_thresh": 0.3,
            "batch_size_per_image": 256, "positive_fraction": 0.5, "score_thresh": 0.0,
            "min_box_size": 1e-3,
        },
        "roi_heads": {
            "box_roi_pool": {"type": "multi_scale_roi_align", "featmap_names": ["0", "1", "2"], "output_size": 7,
                             "sampling_ratio": 2, "canonical_scale": 224, "canonical_level": 4},
            "box_head": {"type": "two_mlp_head", "in_channels": 64 * 7 * 7, "representation_size": 256},
            "box_predictor": {"type": "fast_rcnn_predictor", "in_channels": 256, "num_classes": 9},
            "bbox_reg_weights": [10.0, 10.0, 5.0, 5.0],
            "score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_img": 100,
            "fg_iou_thresh": 0.5, "bg_iou_thresh": 0.5, "batch_size_per_image": 128, "positive_fraction": 0.25,
            "min_box_size": 1e-2,
        },
    }


# ----------------------------------------------------------------------------- builders

def _norm(kind, eps, training):
    if training:
        return partial(nn.BatchNorm2d, eps=eps)
    if kind != "frozen_batch_norm_2d":
        raise ValueError(f"unsupported norm_layer {kind!r}")
    return partial(FrozenBatchNorm2d, eps=eps)


def _mobilenet_v2_features(backbone_config, training, imagenet_weights=None):
    norm = _norm(backbone_config["norm_layer"], backbone_config["batch_norm_eps"], training)
    if backbone_config["activation"] != "relu6":
        raise ValueError("mobilenet_v2 uses relu6")
    model = torchvision.models.mobilenet_v2(width_mult=backbone_config["width_mult"],
                                            round_nearest=backbone_config["round_nearest"], norm_layer=norm)
    if imagenet_weights is not None:
        state = torch.load(imagenet_weights, map_location="cpu")
        model.load_state_dict(state)
    return model.features


def _fpn_body(config, training, imagenet_weights):
    b, f = config["backbone"], config["fpn"]
    features = _mobilenet_v2_features(b, training, imagenet_weights)
    extra = f["extra_blocks"]
    if extra["type"] == "last_level_p6p7":
        extra_blocks = LastLevelP6P7(extra["in_channels"], extra["out_channels"])
    elif extra["type"] == "last_level_max_pool":
        extra_blocks = LastLevelMaxPool()
    else:
        raise ValueError(f"unsupported fpn.extra_blocks.type {extra['type']!r}")
    return BackboneWithFPN(features, return_layers=dict(b["return_layers"]), in_channels_list=b["in_channels_list"],
                           out_channels=f["out_channels"], extra_blocks=extra_blocks)


def _anchor_generator(a):
    return AnchorGenerator(tuple(tuple(s) for s in a["sizes"]), tuple(tuple(r) for r in a["aspect_ratios"]))


class SSDLiteMobileNetV2Extractor(nn.Module):
    """MobileNetV2 `features` cut into stages, followed by SSDLite extra blocks; returns every stage's
    and every extra block's output as an OrderedDict '0', '1', ...

    State-dict keys: features.<stage>.<layer>..., extra.<block>.<0|1|2>.<0|1>...
    """

    def __init__(self, features, stages, extra_blocks, extra_norm):
        super().__init__()
        self.features = nn.ModuleList([nn.Sequential(*features[a:b]) for a, b in stages])
        blocks = []
        for spec in extra_blocks:
            cin, cout = spec["in_channels"], spec["out_channels"]
            mid = cout // 2
            blocks.append(nn.Sequential(
                Conv2dNormActivation(cin, mid, kernel_size=1, norm_layer=extra_norm, activation_layer=nn.ReLU6),
                Conv2dNormActivation(mid, mid, kernel_size=3, stride=2, groups=mid, norm_layer=extra_norm,
                                     activation_layer=nn.ReLU6),
                Conv2dNormActivation(mid, cout, kernel_size=1, norm_layer=extra_norm, activation_layer=nn.ReLU6),
            ))
        self.extra = nn.ModuleList(blocks)
        for module in self.extra.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, mean=0.0, std=0.03)

    def forward(self, x):
        outputs = []
        for stage in self.features:
            x = stage(x)
            outputs.append(x)
        for block in self.extra:
            x = block(x)
            outputs.append(x)
        return OrderedDict((str(i), v) for i, v in enumerate(outputs))


def build_model(config, training=False, imagenet_weights=None):
    """A torchvision detector for `config`. training=True uses trainable nn.BatchNorm2d (same keys plus
    num_batches_tracked); training=False uses FrozenBatchNorm2d, as the shipped weights expect."""
    family = config["family"]
    t = config["transform"]
    transform_args = dict(min_size=t["min_size"], max_size=t["max_size"], image_mean=t["image_mean"],
                          image_std=t["image_std"])
    num_classes = config["num_classes"]
    if family in ("fcos", "retinanet"):
        body = _fpn_body(config, training, imagenet_weights)
        anchors = _anchor_generator(config["anchor_generator"])
        h = config["head"]
        if family == "fcos":
            head = FCOSHead(h["in_channels"], h["num_anchors"], num_classes, num_convs=h["num_convs"])
            return FCOS(body, num_classes, anchor_generator=anchors, head=head,
                        center_sampling_radius=config["center_sampling_radius"],
                        score_thresh=config["score_thresh"], nms_thresh=config["nms_thresh"],
                        detections_per_img=config["detections_per_img"],
                        topk_candidates=config["topk_candidates"], **transform_args)
        if h["num_convs"] != 4:
            raise ValueError("torchvision 0.14 RetinaNetHead has 4 convs per branch")
        if h["norm_layer"] is None:
            norm_layer = None
        elif h["norm_layer"] == "group_norm":
            norm_layer = partial(nn.GroupNorm, h["group_norm_num_groups"], eps=h["group_norm_eps"])
        else:
            raise ValueError(f"unsupported retinanet head norm_layer {h['norm_layer']!r}")
        head = RetinaNetHead(h["in_channels"], h["num_anchors"], num_classes, norm_layer=norm_layer)
        # v2 (retinanet_resnet50_fpn_v2) trains box regression with the GIoU loss; inference is unchanged
        head.regression_head._loss_type = h.get("regression_loss", "l1")
        return RetinaNet(body, num_classes, anchor_generator=anchors, head=head,
                         score_thresh=config["score_thresh"], nms_thresh=config["nms_thresh"],
                         detections_per_img=config["detections_per_img"], fg_iou_thresh=config["fg_iou_thresh"],
                         bg_iou_thresh=config["bg_iou_thresh"], topk_candidates=config["topk_candidates"],
                         **transform_args)
    if family == "ssdlite":
        b = config["backbone"]
        features = _mobilenet_v2_features(b, training, imagenet_weights)
        extractor = SSDLiteMobileNetV2Extractor(features, b["stages"], b["extra_blocks"],
                                                _norm(b["norm_layer"], b["extra_batch_norm_eps"], training))
        a = config["anchor_generator"]
        anchors = DefaultBoxGenerator(a["aspect_ratios"], scales=a["scales"], steps=a["steps"], clip=a["clip"])
        h = config["head"]
        if anchors.num_anchors_per_location() != h["num_anchors"]:
            raise ValueError("head.num_anchors disagrees with the anchor generator")
        head = SSDLiteHead(h["in_channels"], h["num_anchors"], num_classes,
                           _norm(h["norm_layer"], h["batch_norm_eps"], training))
        return SSD(extractor, anchors, tuple(config["size"]), num_classes, image_mean=t["image_mean"],
                   image_std=t["image_std"], head=head, score_thresh=config["score_thresh"],
                   nms_thresh=config["nms_thresh"], detections_per_img=config["detections_per_img"],
                   iou_thresh=config["iou_thresh"], topk_candidates=config["topk_candidates"],
                   positive_fraction=config["positive_fraction"])
    if family == "fasterrcnn":
        body = _fpn_body(config, training, imagenet_weights)
        r, roi = config["rpn"], config["roi_heads"]
        if r["min_box_size"] != 1e-3 or roi["min_box_size"] != 1e-2:
            raise ValueError("torchvision 0.14 fixes rpn.min_box_size = 1e-3 and roi_heads.min_box_size = 1e-2")
        pool = roi["box_roi_pool"]
        return FasterRCNN(
            body, num_classes=None,
            rpn_anchor_generator=_anchor_generator(r["anchor_generator"]),
            rpn_head=RPNHead(r["head"]["in_channels"], r["head"]["num_anchors"], conv_depth=r["head"]["conv_depth"]),
            rpn_pre_nms_top_n_train=r["pre_nms_top_n_train"], rpn_pre_nms_top_n_test=r["pre_nms_top_n_test"],
            rpn_post_nms_top_n_train=r["post_nms_top_n_train"], rpn_post_nms_top_n_test=r["post_nms_top_n_test"],
            rpn_nms_thresh=r["nms_thresh"], rpn_fg_iou_thresh=r["fg_iou_thresh"], rpn_bg_iou_thresh=r["bg_iou_thresh"],
            rpn_batch_size_per_image=r["batch_size_per_image"], rpn_positive_fraction=r["positive_fraction"],
            rpn_score_thresh=r["score_thresh"],
            box_roi_pool=MultiScaleRoIAlign(pool["featmap_names"], pool["output_size"], pool["sampling_ratio"]),
            box_head=TwoMLPHead(roi["box_head"]["in_channels"], roi["box_head"]["representation_size"]),
            box_predictor=FastRCNNPredictor(roi["box_predictor"]["in_channels"], roi["box_predictor"]["num_classes"]),
            box_score_thresh=roi["score_thresh"], box_nms_thresh=roi["nms_thresh"],
            box_detections_per_img=roi["detections_per_img"], box_fg_iou_thresh=roi["fg_iou_thresh"],
            box_bg_iou_thresh=roi["bg_iou_thresh"], box_batch_size_per_image=roi["batch_size_per_image"],
            box_positive_fraction=roi["positive_fraction"], bbox_reg_weights=tuple(roi["bbox_reg_weights"]),
            **transform_args)
    raise ValueError(f"unknown family {family!r}")


def config_json(config, indent=0):
    """config as JSON text: objects one key per line; arrays and flat objects on one line."""
    def flat(value):
        if isinstance(value, dict):
            return all(not isinstance(v, (dict, list)) for v in value.values())
        if isinstance(value, list):
            return all(not isinstance(v, (dict, list)) or flat(v) for v in value)
        return True

    pad = " " * (indent + 1)
    if isinstance(config, dict) and (not flat(config) or len(json.dumps(config)) > 100):
        items = [f"{pad}{json.dumps(k)}: {config_json(v, indent + 1)}" for k, v in config.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(config, list) and any(isinstance(v, dict) for v in config):
        items = [f"{pad}{config_json(v, indent + 1)}" for v in config]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(config, separators=(", ", ": "))


def inference_state_dict(model):
    """The trained model's state_dict as the FrozenBatchNorm2d model expects it (no num_batches_tracked)."""
    return OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items()
                       if not k.endswith("num_batches_tracked"))
