"""Converts a shipped model's torchvision architecture description (shapes_models.default_config,
written by train_shapes.py) into detq's config.json schema (Sources/Detectors/DetectorConfig.swift).

Run: .venv-ref/bin/python detectors/tools/detq_config.py IN.json OUT.json
Covers all four shipped families: fcos, retinanet, ssdlite (MobileNetV2 stages + extra blocks)
and fasterrcnn (MobileNetV2 FPN body).
"""
import json
import sys


def _common(shapes, transform):
    return {
        "architecture": shapes["name"],
        "family": shapes["family"],
        "num_classes": shapes["num_classes"],
        "min_size": transform["min_size"],
        "max_size": transform["max_size"],
        "image_mean": transform["image_mean"],
        "image_std": transform["image_std"],
        "size_divisible": transform["size_divisible"],
    }


def _ssdlite(shapes):
    backbone, transform, head, boxes = shapes["backbone"], shapes["transform"], shapes["head"], shapes["anchor_generator"]
    if shapes["box_coder"]["weights"] != [10.0, 10.0, 5.0, 5.0]:
        raise SystemExit("detq_config: detq's SSD box coder has weights (10, 10, 5, 5)")
    config = _common(shapes, transform)
    config["backbone"] = {
        "name": backbone["name"],
        "width_mult": backbone["width_mult"],
        "batch_norm_eps": backbone["batch_norm_eps"],
        "stages": backbone["stages"],
        "extra_out_channels": [b["out_channels"] for b in backbone["extra_blocks"]],
        "extra_batch_norm_eps": backbone["extra_batch_norm_eps"],
    }
    config.update({
        "fixed_size": transform["fixed_size"],
        "score_thresh": shapes["score_thresh"],
        "nms_thresh": shapes["nms_thresh"],
        "detections_per_img": shapes["detections_per_img"],
        "topk_candidates": shapes["topk_candidates"],
        "default_boxes": {"aspect_ratios": boxes["aspect_ratios"], "scales": boxes["scales"], "clip": boxes["clip"]},
        "head": {"in_channels": head["in_channels"], "batch_norm_eps": head["batch_norm_eps"]},
        **_categories(shapes),
    })
    if boxes["steps"] is not None:
        config["default_boxes"]["steps"] = boxes["steps"]
    return config


def _fpn_backbone(backbone, fpn):
    extra = fpn["extra_blocks"]
    config = {
        "name": backbone["name"],
        "width_mult": backbone["width_mult"],
        "returned_layers": sorted(int(k) for k in backbone["return_layers"]),
        "in_channels": backbone["in_channels_list"],
        "fpn_out_channels": fpn["out_channels"],
        "extra_blocks": {"last_level_p6p7": "p6p7", "last_level_max_pool": "maxpool"}[extra["type"]],
        "fpn_batch_norm": fpn["norm_layer"] is not None,
        "batch_norm_eps": backbone["batch_norm_eps"],
    }
    if extra["type"] == "last_level_p6p7":
        config["p6p7_in_channels"] = extra["in_channels"]
    return config


def _categories(shapes):
    return {"categories": shapes["categories"], "label_to_category": shapes["label_to_category_id"]}


def _fasterrcnn(shapes):
    rpn, roi = shapes["rpn"], shapes["roi_heads"]
    if rpn["box_coder_weights"] != [1.0, 1.0, 1.0, 1.0] or rpn["min_box_size"] != 1e-3:
        raise SystemExit("detq_config: detq's RPN has box coder weights (1, 1, 1, 1) and min size 1e-3")
    if roi["box_head"]["type"] != "two_mlp_head":
        raise SystemExit(f"detq_config: box head {roi['box_head']['type']!r} is not converted")
    pool = roi["box_roi_pool"]
    config = _common(shapes, shapes["transform"])
    config["backbone"] = _fpn_backbone(shapes["backbone"], shapes["fpn"])
    config.update({
        "score_thresh": roi["score_thresh"],
        "nms_thresh": roi["nms_thresh"],
        "detections_per_img": roi["detections_per_img"],
        "anchor_sizes": rpn["anchor_generator"]["sizes"],
        "aspect_ratios": rpn["anchor_generator"]["aspect_ratios"],
        "rpn": {
            "pre_nms_top_n_test": rpn["pre_nms_top_n_test"],
            "post_nms_top_n_test": rpn["post_nms_top_n_test"],
            "nms_thresh": rpn["nms_thresh"],
            "score_thresh": rpn["score_thresh"],
            "conv_depth": rpn["head"]["conv_depth"],
        },
        "roi_heads": {
            "box_head": "two_mlp",
            "representation_size": roi["box_head"]["representation_size"],
            "sampling_ratio": pool["sampling_ratio"],
            "output_size": pool["output_size"],
            "featmap_names": pool["featmap_names"],
            "box_coder_weights": roi["bbox_reg_weights"],
        },
        **_categories(shapes),
    })
    return config


def _dense(shapes):
    """fcos and retinanet: FPN backbone, dense head."""
    config = _common(shapes, shapes["transform"])
    config["backbone"] = _fpn_backbone(shapes["backbone"], shapes["fpn"])
    config.update({
        "score_thresh": shapes["score_thresh"],
        "nms_thresh": shapes["nms_thresh"],
        "detections_per_img": shapes["detections_per_img"],
        "topk_candidates": shapes["topk_candidates"],
        "anchor_sizes": shapes["anchor_generator"]["sizes"],
        "aspect_ratios": shapes["anchor_generator"]["aspect_ratios"],
        **_categories(shapes),
    })
    head = shapes["head"]
    config["head"] = {"num_convs": head["num_convs"]}
    if head.get("norm_layer") == "group_norm":
        config["head"].update(norm="group_norm", group_norm_groups=head["group_norm_num_groups"],
                              group_norm_eps=head["group_norm_eps"])
    coder = shapes["box_coder"]
    if coder["type"] == "box_linear_coder":
        config["head"]["normalize_by_size"] = coder["normalize_by_size"]
    else:
        config["head"]["box_coder_weights"] = coder["weights"]
    return config


def detq_config(shapes):
    converters = {"ssdlite": _ssdlite, "fasterrcnn": _fasterrcnn, "fcos": _dense, "retinanet": _dense}
    if shapes["family"] not in converters:
        raise SystemExit(f"detq_config: unknown family {shapes['family']!r}")
    return converters[shapes["family"]](shapes)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        converted = detq_config(json.load(f))
    with open(sys.argv[2], "w") as f:
        json.dump(converted, f, indent=2)
        f.write("\n")
