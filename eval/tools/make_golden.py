"""Makes the COCO evaluator goldens: seeded cases evaluated by pycocotools.

Writes eval/goldens/cocoeval/<case>.gt.json and <case>.dt.json (small COCO instances and results
files) and eval/goldens/cocoeval/goldens.json with, per case, what pycocotools' COCOeval
(iouType='bbox', default parameters) gives: the 12 stats, the printed summary, the per-category
AP / AP50 / AP75 / AR100 table (these as repr strings, exact), and (except for the two cases with
the 80 COCO categories) recall [T][K][A][M] and the mean over recall thresholds of precision
[T][K][A][M]. The Swift tests (Tests/COCOTests) only read these files.

Cases cover: crowds (and pycocotools' `ignore` overwrite), images without ground truth or without
detections, categories absent from the ground truth or from the results, detections of categories
the ground truth does not list, more than 100 detections per image, score ties, tiny, empty and
huge boxes, areas exactly on the range boundaries, ground-truth `area` unlike the box area,
non-contiguous category ids, integer coordinates, annotation id 0, repeated annotation and
category ids, useCats=0, an empty results list, and the real COCO sample of ../shared/data
(ground truth as detections, and seeded perturbed detections).

Use (from the repository root):  .venv-ref/bin/python eval/tools/make_golden.py
"""
import contextlib
import copy
import io
import json
import os
import sys

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "eval", "goldens", "cocoeval")
SAMPLE = os.path.join(ROOT, "..", "shared", "data", "coco-val2017-sample", "instances.json")


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, separators=(",", ":"))
        f.write("\n")


def random_box(rng, width, height, kind):
    """A ground-truth box [x, y, w, h] of a size class: tiny, small, medium, large or any."""
    if kind == "tiny":
        w, h = rng.uniform(0.1, 3, 2)
    elif kind == "small":
        w, h = rng.uniform(3, 40, 2)
    elif kind == "medium":
        w, h = rng.uniform(25, 110, 2)
    elif kind == "large":
        w, h = rng.uniform(90, 400, 2)
    else:
        w, h = np.exp(rng.uniform(np.log(2), np.log(400), 2))
    x = rng.uniform(0, max(1.0, width - w))
    y = rng.uniform(0, max(1.0, height - h))
    return [float(x), float(y), float(w), float(h)]


def jittered(rng, box, noise):
    x, y, w, h = box
    dx, dy, dw, dh = rng.normal(0, noise, 4)
    return [float(x + dx * w), float(y + dy * h), float(w * np.exp(dw)), float(h * np.exp(dh))]


def rounded(box, digits):
    return [round(v, digits) for v in box]


def make_random_case(seed, images=30, categories=(1, 3, 7, 12, 90), gt_categories=None,
                     extra_dt_categories=(5,), crowd_rate=0.05, dets_mean=20, dense_images=1,
                     empty_gt_rate=0.15, empty_dt_rate=0.1, tie_rate=0.5, mask_area_rate=0.3,
                     first_annotation_id=1):
    """A varied random case; returns (gt dict, dt list)."""
    rng = np.random.default_rng(seed)
    gt_categories = list(gt_categories if gt_categories is not None else categories[:-1])
    names = ["person", "caf\u00e9 table", "traffic \"light\"", "a/b\\c", "\u732b", "thing", "x"]
    cats = [{"id": c, "name": names[i % len(names)], "supercategory": "s"} for i, c in enumerate(categories)]
    image_records, annotations, results = [], [], []
    ann_id = first_annotation_id
    ids = rng.permutation(np.arange(1000, 1000 + 13 * images, 13))  # unsorted in the file
    for index, image_id in enumerate(ids):
        image_id = int(image_id)
        width, height = int(rng.integers(200, 640)), int(rng.integers(200, 480))
        image_records.append({"id": image_id, "width": width, "height": height,
                              "file_name": f"{image_id:012d}.jpg", "license": 1})
        gts = []
        if rng.random() >= empty_gt_rate:
            for _ in range(int(rng.integers(1, 9))):
                kind = rng.choice(["tiny", "small", "medium", "large", "any"], p=[0.05, 0.3, 0.3, 0.2, 0.15])
                box = rounded(random_box(rng, width, height, kind), 2)
                category = int(rng.choice(gt_categories))
                area = box[2] * box[3]
                if rng.random() < mask_area_rate:
                    area *= float(rng.uniform(0.4, 1.0))  # a mask area, smaller than the box
                annotation = {"segmentation": [[box[0], box[1], box[0] + box[2], box[1], box[0] + box[2],
                                                box[1] + box[3]]],
                              "area": round(area, 4), "iscrowd": int(rng.random() < crowd_rate),
                              "image_id": image_id, "bbox": box, "category_id": category, "id": ann_id}
                if rng.random() < 0.05:
                    annotation["ignore"] = 1  # pycocotools overwrites this with iscrowd
                annotations.append(annotation)
                gts.append((box, category))
                ann_id += 1
        if rng.random() < empty_dt_rate:
            continue
        count = int(rng.poisson(dets_mean))
        if index < dense_images:
            count = 150  # more than maxDets[-1] = 100
        ties = rng.random() < tie_rate
        for _ in range(count):
            if gts and rng.random() < 0.6:
                box, category = gts[int(rng.integers(len(gts)))]
                box = jittered(rng, box, float(rng.choice([0.02, 0.05, 0.1, 0.3])))
                if rng.random() < 0.1:
                    category = int(rng.choice(list(categories) + list(extra_dt_categories)))
            else:
                box = random_box(rng, width, height, "any")
                category = int(rng.choice(list(categories) + list(extra_dt_categories)))
            score = float(rng.random())
            if ties:
                score = round(score, 1)
            style = rng.random()
            if style < 0.15:
                box = [int(round(v)) for v in box]  # integer coordinates in the JSON
            elif style < 0.7:
                box = rounded(box, 2)
            results.append({"image_id": image_id, "category_id": category, "bbox": box, "score": score})
    gt = {"info": {"description": f"detq cocoeval golden, seed {seed}"}, "licenses": [{"id": 1, "name": "x"}],
          "images": image_records, "annotations": annotations, "categories": cats}
    return gt, results


def boundary_case():
    """Boxes on the area range boundaries, empty, tiny and huge boxes, hand-placed."""
    images = [{"id": i} for i in (1, 2, 3)]
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    anns = []
    dts = []

    def gt(image, cat, box, area=None, crowd=0):
        anns.append({"id": len(anns) + 1, "image_id": image, "category_id": cat, "bbox": box,
                     "area": box[2] * box[3] if area is None else area, "iscrowd": crowd})

    def dt(image, cat, box, score):
        dts.append({"image_id": image, "category_id": cat, "bbox": box, "score": score})

    # Areas exactly 32^2 and 96^2: inside both neighbouring ranges (bounds are inclusive).
    gt(1, 1, [10, 10, 32, 32])
    gt(1, 1, [100, 100, 96, 96])
    gt(1, 1, [300, 10, 16, 64])
    gt(1, 2, [0, 0, 1e5, 1e5])  # area exactly 1e10: inside "all" and "large"
    gt(1, 2, [0, 0, 2e5, 1e5])  # area 2e10: outside every range, so ignored everywhere
    gt(2, 1, [5, 5, 0.5, 0.5])  # tiny
    gt(2, 1, [50, 50, 0, 20], area=0)  # empty box, area 0
    gt(2, 2, [0, 0, 640, 480], crowd=1)
    gt(3, 2, [10, 10, 20, 20], area=1024.0)  # the area field, not the box, decides the range
    for box, score in [([10, 10, 32, 32], 0.9), ([12, 12, 30, 31], 0.8), ([100, 100, 96, 96], 0.7),
                       ([100.5, 100, 95, 96], 0.7), ([300, 10, 16, 64], 0.6), ([301, 11, 16, 63], 0.6)]:
        dt(1, 1, box, score)
    for box, score in [([0, 0, 1e5, 1e5], 0.5), ([0, 0, 2e5, 1e5], 0.5), ([1, 1, 1e5, 1e5], 0.4)]:
        dt(1, 2, box, score)
    for box, score in [([5, 5, 0.5, 0.5], 0.9), ([5.1, 5.1, 0.5, 0.5], 0.9), ([50, 50, 0, 20], 0.8),
                       ([50, 50, 1, 20], 0.8), ([5, 5, 31.9, 32.1], 0.3)]:
        dt(2, 1, box, score)
    for box, score in [([10, 10, 100, 100], 0.9), ([200, 200, 50, 50], 0.8), ([0, 0, 700, 500], 0.7),
                       ([0, 0, 640, 480], 0.6), ([-10, -10, 20, 20], 0.5)]:
        dt(2, 2, box, score)  # all on a crowd: intersection over the detection's area
    for box, score in [([10, 10, 20, 20], 0.9), ([9, 9, 22, 22], 0.95)]:
        dt(3, 2, box, score)
    return {"images": images, "annotations": anns, "categories": cats}, dts


def repeated_ids_case():
    """Annotation id 0, repeated annotation ids and a repeated category id."""
    gt, dts = make_random_case(seed=606, images=12, categories=(2, 4, 6), gt_categories=(2, 4, 6),
                               extra_dt_categories=(), first_annotation_id=0, dense_images=0)
    anns = gt["annotations"]
    # Annotation id 0 exists (first_annotation_id=0). Repeat two ids: loadAnns returns the last
    # annotation with an id for every occurrence.
    anns[3]["id"] = anns[7]["id"]
    anns[10]["id"] = anns[2]["id"]
    # A detection exactly on annotation 0 with the top score: pycocotools counts its match as none.
    anns[0]["iscrowd"] = 0
    dts.append({"image_id": anns[0]["image_id"], "category_id": anns[0]["category_id"],
                "bbox": anns[0]["bbox"], "score": 1.0})
    gt["categories"].append({"id": 4, "name": "again"})
    return gt, dts


def evaluate(gt_path, dt_path, use_cats, dt_override=None):
    """pycocotools' evaluation; returns the golden record."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_path)
        if dt_override is not None:
            coco_dt = dt_override(coco_gt)
        else:
            coco_dt = coco_gt.loadRes(dt_path)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.useCats = use_cats
        evaluator.evaluate()
        evaluator.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        evaluator.summarize()
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    recall = evaluator.eval["recall"]  # [T, K, A, M]
    per_category = []
    if use_cats:
        for k, category_id in enumerate(evaluator.params.catIds):
            def mean(s):
                s = s[s > -1]
                return float(np.mean(s)) if len(s) else -1.0
            per_category.append({
                "category_id": int(category_id),
                "name": coco_gt.cats[category_id]["name"],
                "ap": repr(mean(precision[:, :, k, 0, 2])),
                "ap50": repr(mean(precision[0, :, k, 0, 2])),
                "ap75": repr(mean(precision[5, :, k, 0, 2])),
                "ar100": repr(mean(recall[:, k, 0, 2])),
            })
    return {
        "use_cats": bool(use_cats),
        # Exact values as repr strings (a JSON reader need not round correctly; Python's repr and
        # float() round-trip).
        "stats": [repr(float(v)) for v in evaluator.stats],
        "summary": summary.getvalue(),
        "per_category": per_category,
        "recall": recall.tolist(),
        "precision_mean_over_recall": precision.mean(axis=1).tolist(),
    }


def check_faster_coco_eval(gt_path, dt_path, use_cats, expected):
    """faster-coco-eval must agree (it is the reference for an empty results list)."""
    try:
        from faster_coco_eval import COCO as FasterCOCO, COCOeval_faster
    except ImportError:
        return
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = FasterCOCO(gt_path)
        coco_dt = coco_gt.loadRes(dt_path)
        evaluator = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=lambda *a, **k: None)
        evaluator.params.useCats = use_cats
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    difference = np.max(np.abs(np.array(evaluator.stats) - np.array([float(v) for v in expected])))
    if difference > 1e-12:
        sys.exit(f"faster-coco-eval disagrees on {dt_path}: {difference}")


def empty_results(coco_gt):
    """pycocotools' loadRes cannot take [] (it reads anns[0]); build the empty results by hand."""
    coco_dt = COCO()
    coco_dt.dataset = {"images": coco_gt.dataset["images"], "categories": copy.deepcopy(coco_gt.dataset["categories"]),
                       "annotations": []}
    coco_dt.createIndex()
    return coco_dt


def sample_perturbed(gt):
    """Seeded detections around the sample's boxes: jitter, misses, duplicates, false positives."""
    rng = np.random.default_rng(2017)
    by_id = {image["id"]: image for image in gt["images"]}
    dts = []
    for annotation in gt["annotations"]:
        if rng.random() < 0.1:
            continue  # missed
        for copy_index in range(1 + int(rng.random() < 0.2)):  # sometimes a duplicate
            box = jittered(rng, annotation["bbox"], float(rng.choice([0.02, 0.05, 0.1, 0.2])))
            dts.append({"image_id": annotation["image_id"], "category_id": annotation["category_id"],
                        "bbox": rounded(box, 2), "score": round(float(rng.random()), 3)})
    categories = [c["id"] for c in gt["categories"]]
    for image_id, image in by_id.items():
        for _ in range(int(rng.integers(0, 6))):
            box = random_box(rng, image["width"], image["height"], "any")
            dts.append({"image_id": image_id, "category_id": int(rng.choice(categories)),
                        "bbox": rounded(box, 2), "score": round(float(rng.random()), 3)})
    return dts


def main():
    os.makedirs(OUT, exist_ok=True)
    goldens = {"iou_thresholds": [repr(v) for v in np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1)],
               "recall_thresholds": [repr(v) for v in np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1)],
               "cases": []}

    def add(name, gt_file, dt_file, use_cats, dt_override=None, check=True, arrays=True):
        gt_path = os.path.join(OUT, gt_file) if not os.path.isabs(gt_file) else gt_file
        dt_path = os.path.join(OUT, dt_file) if dt_file else None
        record = evaluate(gt_path, dt_path, use_cats, dt_override)
        if not arrays:  # keep the goldens small: 80 categories' arrays add 150 kB a case
            del record["recall"], record["precision_mean_over_recall"]
        if check and dt_path:
            check_faster_coco_eval(gt_path, dt_path, use_cats, record["stats"])
        record.update({"name": name, "gt": gt_file if not os.path.isabs(gt_file) else "SAMPLE", "dt": dt_file})
        goldens["cases"].append(record)
        print(f"{name:22s} AP {float(record['stats'][0]):.4f}  AR100 {float(record['stats'][8]):.4f}")

    def case_files(name, gt, dts):
        write_json(os.path.join(OUT, f"{name}.gt.json"), gt)
        write_json(os.path.join(OUT, f"{name}.dt.json"), dts)
        return f"{name}.gt.json", f"{name}.dt.json"

    gt_file, dt_file = case_files("mixed", *make_random_case(seed=101))
    add("mixed", gt_file, dt_file, 1)
    add("mixed_nocats", gt_file, dt_file, 0)
    gt_file, dt_file = case_files("crowds", *make_random_case(seed=202, images=20, crowd_rate=0.35, dets_mean=25))
    add("crowds", gt_file, dt_file, 1)
    add("crowds_nocats", gt_file, dt_file, 0)
    gt_file, dt_file = case_files("dense", *make_random_case(seed=303, images=6, dense_images=4, dets_mean=60,
                                                               tie_rate=1.0, categories=(11, 22, 33)))
    add("dense", gt_file, dt_file, 1)
    add("dense_nocats", gt_file, dt_file, 0)
    gt_file, dt_file = case_files("sparse", *make_random_case(seed=404, images=30, empty_gt_rate=0.4,
                                                                empty_dt_rate=0.4, dets_mean=4,
                                                                categories=(3, 30, 300, 3000),
                                                                gt_categories=(3, 300), extra_dt_categories=(31,)))
    add("sparse", gt_file, dt_file, 1)
    gt_file, dt_file = case_files("boundaries", *boundary_case())
    add("boundaries", gt_file, dt_file, 1)
    add("boundaries_nocats", gt_file, dt_file, 0)
    gt_file, dt_file = case_files("repeated_ids", *repeated_ids_case())
    add("repeated_ids", gt_file, dt_file, 1)
    add("repeated_ids_nocats", gt_file, dt_file, 0)
    # An empty results list: pycocotools' loadRes fails on [], so its evaluation of no detections
    # is run on results built by hand; faster-coco-eval loads [] and must agree.
    gt_file, dt_file = case_files("empty_results", make_random_case(seed=505, images=8)[0], [])
    add("empty_results", gt_file, dt_file, 1, dt_override=empty_results, check=False)
    check_faster_coco_eval(os.path.join(OUT, gt_file), os.path.join(OUT, dt_file), 1,
                           goldens["cases"][-1]["stats"])

    if os.path.exists(SAMPLE):
        with open(SAMPLE) as f:
            sample = json.load(f)
        identity = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                    for a in sample["annotations"]]
        write_json(os.path.join(OUT, "sample_identity.dt.json"), identity)
        add("sample_identity", SAMPLE, "sample_identity.dt.json", 1, arrays=False)
        write_json(os.path.join(OUT, "sample_perturbed.dt.json"), sample_perturbed(sample))
        add("sample_perturbed", SAMPLE, "sample_perturbed.dt.json", 1, arrays=False)
    else:
        print("note: ../shared/data is absent; the sample cases are not made")

    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        f.write('{"iou_thresholds": ' + json.dumps(goldens["iou_thresholds"]) + ',\n')
        f.write(' "recall_thresholds": ' + json.dumps(goldens["recall_thresholds"]) + ',\n')
        f.write(' "cases": [\n' + ',\n'.join(json.dumps(case) for case in goldens["cases"]) + ']}\n')


if __name__ == "__main__":
    main()
