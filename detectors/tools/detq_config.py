"""Converts a shipped model's torchvision architecture description (shapes_models.default_config,
written by train_shapes.py) into detq's config.json schema (Sources/Detectors/DetectorConfig.swift).

Run: .venv-ref/bin/python detectors/tools/detq_config.py IN.json OUT.json
Covers the FPN families (fcos, retinanet); ssdlite and fasterrcnn are to be added with their
shipped models.
"""
import json
import sys


def detq_config(shapes):
    family = shapes["family"]
    if family not in ("fcos", "retinanet"):
        raise SystemExit(f"detq_config: family {family!r} is not converted yet")
    backbone, fpn, transform = shapes["backbone"], shapes["fpn"], shapes["transform"]
    returned = sorted(int(k) for k in backbone["return_layers"])
    extra = fpn["extra_blocks"]
    config = {
        "architecture": shapes["name"],
        "family": family,
        "backbone": {
            "name": backbone["name"],
            "width_mult": backbone["width_mult"],
            "returned_layers": returned,
            "in_channels": backbone["in_channels_list"],
            "fpn_out_channels": fpn["out_channels"],
            "extra_blocks": {"last_level_p6p7": "p6p7", "last_level_max_pool": "maxpool"}[extra["type"]],
            "fpn_batch_norm": fpn["norm_layer"] is not None,
            "batch_norm_eps": backbone["batch_norm_eps"],
        },
        "num_classes": shapes["num_classes"],
        "min_size": transform["min_size"],
        "max_size": transform["max_size"],
        "image_mean": transform["image_mean"],
        "image_std": transform["image_std"],
        "size_divisible": transform["size_divisible"],
        "score_thresh": shapes["score_thresh"],
        "nms_thresh": shapes["nms_thresh"],
        "detections_per_img": shapes["detections_per_img"],
        "topk_candidates": shapes["topk_candidates"],
        "anchor_sizes": shapes["anchor_generator"]["sizes"],
        "aspect_ratios": shapes["anchor_generator"]["aspect_ratios"],
        "categories": shapes["categories"],
        "label_to_category": shapes["label_to_category_id"],
    }
    if extra["type"] == "last_level_p6p7":
        config["backbone"]["p6p7_in_channels"] = extra["in_channels"]
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


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        converted = detq_config(json.load(f))
    with open(sys.argv[2], "w") as f:
        json.dump(converted, f, indent=2)
        f.write("\n")
