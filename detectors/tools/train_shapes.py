"""Trains one small `<family>_mobilenet_v2_shapes` detector on datasets/shapes on the CPU and ships it.

Recipe (docs/training-notes.md): torchvision model built from config data (shapes_models.py) on
mobilenet_v2 with the ImageNet weights, features[0:4] frozen, other BatchNorm trainable; SGD
momentum 0.9, weight decay on weights only, batch 8, linear warm-up, cosine decay on elapsed time so
the run ends on schedule (the machine is shared, so "elapsed" is process CPU time / threads, capped by
a wall-clock limit), gradient clipping at 10, random horizontal and vertical flips.
glibc is told to keep freed memory in the process (`keep_freed_memory`: ~10 % less CPU time per step).
RetinaNet's anchor assignment can be ATSS instead of IoU matching (`training_matcher` in the config, atss.py).

At the end it writes detectors/<name>/{architecture.json, config.json, weights.safetensors (F16, torchvision keys,
FrozenBatchNorm2d layout), README.md, golden_detections.json}; AP is measured on the shipped file.

Usage (2 shared cores, in the background; passive OpenMP waits keep an oversubscribed machine from
burning the CPU-time budget in spin loops):
    OMP_WAIT_POLICY=PASSIVE nice -n 10 python detectors/tools/train_shapes.py --family fcos --minutes 25 > out/shapes/fcos.log 2>&1 &
"""

import argparse
import ctypes
import json
import math
import os
import random
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import detq_config  # noqa: E402
import atss  # noqa: E402
import eval_shapes_torch  # noqa: E402
import safetensors_io  # noqa: E402
import shapes_models  # noqa: E402

REPO = eval_shapes_torch.REPO
IMAGENET_WEIGHTS = os.path.join(REPO, "..", "shared", "data", "weights", "mobilenet_v2-b0353104.pth")
TRAIN_DIR = os.path.join(REPO, "datasets", "shapes", "train")
DEFAULT_LR = {"fcos": 0.01, "retinanet": 0.01, "ssdlite": 0.01, "fasterrcnn": 0.01}


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def keep_freed_memory():
    """glibc hands every freed block above its mmap threshold (128 KiB, growing to 32 MiB) back to the kernel
    and trims the heap top, so each training step faults its activations and gradients in again: 49 000 page
    faults and 0.14–0.18 s of system time per step (batch 8, RetinaNet, 2 threads; user time ~0.95 s). Keeping
    freed memory in the process (mmap threshold 32 MiB, no trimming below 1 GiB, 512 MiB top pad) cuts that to
    a few hundred faults and 0.05–0.07 s. Measured on a whole process (model build, 13 training steps; 5 pairs
    alternated, medians): CPU time 17.4 s against 18.8 s (ratio 0.90), of which system time 1.7 s against 3.2 s,
    so ~10 % more images in the same CPU-time budget. Returns whether glibc took the settings."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return all(libc.mallopt(option, value) == 1 for option, value in
               ((m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30), (m_top_pad, 512 << 20)))


def load_training_set(train_dir):
    """[(path, boxes [N, 4] xyxy float32, labels [N] int64)] with crowd boxes left out."""
    path = os.path.join(train_dir, "instances.json")
    if not os.path.exists(path):
        log(f"generating the training split into {train_dir}")
        subprocess.run([sys.executable, os.path.join(REPO, "datasets", "shapes", "generate.py"), "--split", "train"],
                       check=True)
    with open(path) as f:
        dataset = json.load(f)
    per_image = {im["id"]: [] for im in dataset["images"]}
    for a in dataset["annotations"]:
        if not a["iscrowd"]:
            per_image[a["image_id"]].append(a)
    samples = []
    for im in dataset["images"]:
        anns = per_image[im["id"]]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], np.float32).reshape(-1, 4)
        labels = np.array([a["category_id"] for a in anns], np.int64)
        samples.append((os.path.join(train_dir, "images", im["file_name"]), boxes, labels))
    return samples


def load_sample(sample, rng):
    path, boxes, labels = sample
    image = eval_shapes_torch.read_image(path)
    boxes = torch.from_numpy(boxes.copy())
    _, h, w = image.shape
    if rng.random() < 0.5:
        image = image.flip(-1)
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    if rng.random() < 0.5:
        image = image.flip(-2)
        boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
    return image, {"boxes": boxes, "labels": torch.from_numpy(labels.copy())}


def freeze_stem(model, family, count):
    """Freezes parameters and BatchNorm statistics of mobilenet_v2 features[0:count]; returns those modules."""
    if family == "ssdlite":
        stage0 = model.backbone.features[0]
        modules = [stage0[i] for i in range(count)]
    else:
        body = model.backbone.body
        modules = [getattr(body, str(i)) for i in range(count)]
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)
    return modules


def initialise_head(model, config):
    """RetinaNet v1's conv towers (no norm) start at N(0, 0.01): with 64 channels each conv shrinks activations
    ~7x, so after 4 convs the classifier sees ~1e-3 of the FPN's scale and does not learn. Kaiming-normal towers
    (a training choice; the architecture and keys are unchanged) keep the scale. With GroupNorm (v2) the
    towers keep their scale anyway and torchvision's init stays."""
    if config["family"] != "retinanet" or config["head"]["norm_layer"] is not None:
        return
    for tower in (model.head.classification_head.conv, model.head.regression_head.conv):
        for module in tower.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                torch.nn.init.zeros_(module.bias)


def set_train_mode(model, frozen):
    model.train()
    for m in frozen:
        m.eval()


def export(model, config, name, out_root):
    folder = os.path.join(out_root, name)
    os.makedirs(folder, exist_ok=True)
    state = shapes_models.inference_state_dict(model)
    safetensors_io.save(state, os.path.join(folder, "weights.safetensors"), dtype="F16",
                        metadata={"format": "pt", "model": name})
    write_configs(folder, config)
    return folder


def write_configs(folder, config):
    """architecture.json: the torchvision description; config.json: detq's schema made from it."""
    with open(os.path.join(folder, "architecture.json"), "w") as f:
        f.write(shapes_models.config_json(config) + "\n")
    try:
        converted = detq_config.detq_config(config)
    except SystemExit as unsupported:
        log(f"config.json not written: {unsupported}")
        return
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(converted, f, indent=2)
        f.write("\n")

FAMILY_NAMES = {"fcos": "FCOS", "retinanet": "RetinaNet", "ssdlite": "SSDLite", "fasterrcnn": "Faster R-CNN"}
ARCHITECTURE_TEXT = {
    "fcos": (
        "`FCOS` on `BackboneWithFPN(mobilenet_v2().features, return_layers {'6': '0', '13': '1', '17': '2'}, "
        "in_channels_list [32, 96, 320], out_channels 64, extra_blocks LastLevelP6P7(64, 64))` (P3–P7, P6 from P5), "
        "`FCOSHead(64, num_anchors=1, num_classes=9, num_convs=3)` (GroupNorm(32, 64)), anchors = one box per location "
        "of size 8, 16, 32, 64, 128 (the level strides), center sampling radius 1.5."),
    "retinanet": (
        "`RetinaNet` on the same `BackboneWithFPN` body (P3–P7 through `LastLevelP6P7(64, 64)`, P6 from P5), "
        "`RetinaNetHead(64, 1, 9, norm_layer=partial(nn.GroupNorm, 32))` — torchvision's v2 head, as "
        "`retinanet_resnet50_fpn_v2` builds it: 4 convs per branch, each 3×3 conv (no bias) → GroupNorm(32, 64) → ReLU, "
        "box regression trained with the GIoU loss (`regression_head._loss_type = 'giou'`; inference is unchanged). "
        "Anchors: one square anchor per location, of size 32, 64, 128, 256, 512 on P3–P7 (four times the level "
        "strides, torchvision's COCO base sizes; aspect ratio 1 only: the shapes' boxes are nearly square, height / "
        "width 0.92–1.07 for half of them). Training assigns anchors by ATSS (`detectors/tools/atss.py`, Zhang et al. "
        "2020; `training_matcher` {type atss, topk 15} in architecture.json; training only — the model, its keys and "
        "its inference are torchvision's RetinaNet): per shape, the 15 anchors per level nearest its centre are "
        "candidates, positives those at or above the candidates' mean + standard deviation of IoU whose centre lies "
        "inside the shape; an anchor claimed twice goes to the larger IoU; a shape left without positive takes its "
        "best candidate. That gives 4.6 / 10.3 / 9.9 positives per small / medium / large training shape "
        "(`anchor_coverage.py --images 40 --bases 32,64,128,256,512 --scales 1 --aspect-ratios 1.0 --atss-topk 15`), "
        "spread over up to 15 locations around the centre, as FCOS's centre sampling spreads them, each location "
        "with one classifier instead of nine. How we got here (AP of a full training run each, same command and "
        "budget, 9–10 epochs; earlier models in git history): with torchvision's IoU matching (0.5 / 0.4, "
        "low-quality matches) and 9 anchors per location (x, 2^(1/3)x, 2^(2/3)x × aspect ratios 0.5, 1, 2), bases equal "
        "to the strides (8…128) left 43 % of the shapes without any anchor at IoU ≥ 0.5 and stalled at AP 0.185; "
        "12…192 reached 0.353, 16…256 0.401 (80 min of one core each), 24…384 0.490 (APs 0.274, APm 0.676, APl "
        "0.724; 5.9 / 19.7 / 19.5 positives per small / medium / large shape); three scales an octave apart on every "
        "level 0.476 (APl 0.806, APs 0.235), wider scales on P4–P7 0.462. ATSS with those 9 anchors per location: "
        "k = 9 0.478 (APs 0.305 but APm 0.622 with 9.2 positives per medium shape), k = 18 0.456 (APm 0.590 although "
        "medium shapes get 18.2 positives, as many as with IoU matching: all from the one or two locations nearest "
        "the centre), ATSS positives added to the IoU ones 0.442. One anchor per location with ATSS, k = 15 (this "
        "model): 0.530, better in every size class (APs 0.311, APm 0.708, APl 0.789). Of the shapes it locates (a "
        "detection at IoU ≥ 0.5), the best-scoring detection has the right class for 79 % (small 63 %, medium 91 %, "
        "large 94 %; `detectors/tools/class_accuracy.py` on the val results; 24…384 with IoU matching: 74 %, FCOS: "
        "83 %); the confusions left are between look-alike classes (diamond / square, circle / hexagon)."),
    "ssdlite": (
        "`SSD` with `SSDLiteHead` on a MobileNetV2 extractor: `features[0:7]` (32 ch, stride 8), `features[7:14]` "
        "(96 ch, stride 16), `features[14:19]` (1280 ch, stride 32), then 3 SSDLite extra blocks "
        "(1×1 conv to out/2 + BN + ReLU6, depthwise 3×3 stride 2 + BN + ReLU6, 1×1 conv to out + BN + ReLU6; "
        "out = 256, 128, 128; BN eps 1e-3) → 6 maps of 32², 16², 8², 4², 2², 1². Keys: "
        "`backbone.features.<stage>.<i>…`, `backbone.extra.<block>.<0|1|2>.<0|1>…`. "
        "`DefaultBoxGenerator([[2, 3]] * 6, scales [0.05, 0.1, 0.2, 0.35, 0.55, 0.75, 0.95], clip)` "
        "(6 boxes per location; scales chosen for objects of 10–190 px in 256-px images instead of ssdlite320's "
        "min_ratio 0.2), head BN eps 1e-3, fixed input size 256×256, ImageNet mean/std (the backbone's), "
        "thresholds as torchvision's ssdlite320 builder."),
    "fasterrcnn": (
        "`FasterRCNN` on `BackboneWithFPN(mobilenet_v2().features, {'6': '0', '13': '1', '17': '2'}, [32, 96, 320], 64, "
        "LastLevelMaxPool())` (levels '0', '1', '2', 'pool' at strides 8–64), RPN anchors (16,), (32,), (64,), (128,) "
        "per level × (0.5, 1, 2), `RPNHead(64, 3)`, `MultiScaleRoIAlign(['0', '1', '2'], 7, 2)`, "
        "`TwoMLPHead(64·7·7, 256)`, `FastRCNNPredictor(256, 9)`; RPN pre/post NMS top-n 1000/1000 in test "
        "(torchvision's defaults). Training samples 128 RoIs per image (25 % positive; torchvision's default 512 "
        "is nearly all background on these images) from 1000/500 RPN proposals (pre/post NMS): with "
        "torchvision's 512 and 2000/2000 an earlier run reached only AP 0.034 after 30 min of one core at half the "
        "images per second."),
}


def write_readme(folder, training, config):
    s = training["val_stats"]
    name = training["model"]
    rounds = "".join(
        f"| earlier round {i + 1} | `{r['command']}`: {r['iterations']} iterations, {r['epochs']:.2f} epochs, "
        f"{r['train_cpu_minutes_per_thread']:.1f} min of {r['threads']} cores, then AP {r['val_stats']['AP']:.3f}; "
        f"the round below continued from its weights |\n"
        for i, r in enumerate(training.get("previous_rounds", [])))
    matcher = config.get("training_matcher")
    assignment = "" if matcher is None else (
        f"| anchor assignment | {atss.MATCHERS[matcher['type']]} "
        f"(`detectors/tools/atss.py`, k = {matcher['topk']} per level; training only, inference unchanged) |\n")
    text = f"""# {name}

A small {FAMILY_NAMES[config['family']]} detector trained on the synthetic `datasets/shapes` set (8 shape classes, category
ids 1–8 = labels 1–8: {', '.join(c['name'] for c in config['categories'])}) by `detectors/tools/train_shapes.py`.
It is rebuilt from `architecture.json` alone (detq reads `config.json`, made from it by `detq_config.py`) (torchvision 0.14 classes, see `detectors/tools/shapes_models.py`).

## Architecture

{ARCHITECTURE_TEXT[config['family']]}

Backbone: torchvision `mobilenet_v2` initialised from the ImageNet checkpoint
`../shared/data/weights/mobilenet_v2-b0353104.pth`. Input: 256×256, `min_size = max_size = 256`, ImageNet
mean/std. BatchNorm: trained as `nn.BatchNorm2d` (features[0:4] frozen: parameters and statistics), shipped
and evaluated as `FrozenBatchNorm2d` with the same keys (`weight`, `bias`, `running_mean`, `running_var`; no
`num_batches_tracked`) and the eps given in `config.json`.

## Training

| | |
| --- | --- |
| data | `datasets/shapes` train split: seed 1000, {training['train_images']} images (crowd boxes left out), random horizontal and vertical flips |
| command | `OMP_WAIT_POLICY=PASSIVE nice -n 10 {training['command']}` (torch 1.13 CPU, {training['threads']} threads) |
| schedule | SGD lr {training['lr']}, momentum {training['momentum']}, weight decay {training['weight_decay']} on weights only, batch {training['batch_size']}, {training['warmup_iterations']}-iteration linear warm-up, cosine decay on elapsed CPU time, gradient clipping at {training['clip']}, seed {training['seed']} |
| length | {training['iterations']} iterations, {training['images_seen']} images = {training['epochs']:.2f} epochs |
| time | {training['train_cpu_minutes_per_thread']:.1f} min of {training['threads']} cores (process CPU time / {training['threads']}); {training['train_wall_minutes']:.1f} min wall on a 2-core machine shared with other jobs |
{assignment}{rounds}| weights | `weights.safetensors`: {training['parameters']:,} parameters in F16 ({training['weights_bytes'] / 2**20:.1f} MiB), torchvision `state_dict` key names |

## Accuracy

pycocotools bbox evaluation on `datasets/shapes/val` (200 images, 1053 objects + 21 crowd regions) of the
shipped F16 weights read back as F32 in torchvision:

| AP | AP50 | AP75 | APs | APm | APl | AR100 |
| --- | --- | --- | --- | --- | --- | --- |
| {s['AP']:.3f} | {s['AP50']:.3f} | {s['AP75']:.3f} | {s['APs']:.3f} | {s['APm']:.3f} | {s['APl']:.3f} | {s['AR100']:.3f} |

```
.venv-ref/bin/python detectors/tools/eval_shapes_torch.py --name {name}
```

`golden_detections.json`: torchvision's final detections (boxes xyxy in pixels, scores, labels) for the first
3 val images, made by `eval_shapes_torch.py --name {name} --golden 3`.
"""
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(text)



def refresh_docs(family, out_root):
    config = shapes_models.default_config(family)
    folder = os.path.join(out_root, config["name"])
    state, _ = safetensors_io.load(os.path.join(folder, "weights.safetensors"))
    shapes_models.build_model(config, training=False).load_state_dict(state, strict=True)
    write_configs(folder, config)
    with open(os.path.join(folder, "training.json")) as f:
        write_readme(folder, json.load(f), config)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=shapes_models.FAMILIES)
    parser.add_argument("--minutes", type=float, default=25.0,
                        help="training budget in minutes of --threads dedicated cores (process CPU time / threads)")
    parser.add_argument("--max-wall-minutes", type=float, default=120.0,
                        help="wall-clock cap: the schedule follows whichever budget is further along")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, help="base learning rate (default per family)")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-iterations", type=int, default=50)
    parser.add_argument("--clip", type=float, default=10.0)
    parser.add_argument("--freeze", type=int, default=4, help="freeze mobilenet_v2 features[0:N]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-dir", default=TRAIN_DIR)
    parser.add_argument("--imagenet-weights", default=IMAGENET_WEIGHTS)
    parser.add_argument("--work-dir", default=os.path.join(REPO, "out", "shapes"))
    parser.add_argument("--out-root", default=os.path.join(REPO, "detectors"))
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--init-from", help="continue from this inference state dict (a previous run's "
                        "out/shapes/<name>.pth, or a shipped weights.safetensors): its weights and BatchNorm statistics replace the ImageNet start")
    parser.add_argument("--refresh-docs", action="store_true",
                        help="no training: rewrite detectors/<name>/{architecture,config}.json from default_config (checking that "
                             "the shipped weights load into it strictly) and README.md from training.json")
    args = parser.parse_args(argv)
    if args.refresh_docs:
        refresh_docs(args.family, args.out_root)
        return

    malloc_tuned = keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    rng = random.Random(args.seed)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.family]
    os.makedirs(args.work_dir, exist_ok=True)

    config = shapes_models.default_config(args.family)
    name = config["name"]
    samples = load_training_set(args.train_dir)
    model = shapes_models.build_model(config, training=True, imagenet_weights=args.imagenet_weights)
    if args.init_from:
        # The inference layout has no num_batches_tracked: those counters restart.
        if args.init_from.endswith(".safetensors"):
            start_state = {k: v.float() for k, v in safetensors_io.load(args.init_from)[0].items()}
        else:
            start_state = torch.load(args.init_from, map_location="cpu")
        missing, unexpected = model.load_state_dict(start_state, strict=False)
        if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
            raise SystemExit(f"--init-from {args.init_from}: missing {missing}, unexpected {unexpected}")
        log(f"continuing from {args.init_from}")
    previous_rounds = []
    previous_path = os.path.join(args.out_root, name, "training.json")
    if args.init_from and os.path.exists(previous_path):
        with open(previous_path) as f:
            previous = json.load(f)
        previous_rounds = previous.pop("previous_rounds", []) + [previous]
    else:
        initialise_head(model, config)
    matcher = config.get("training_matcher", {"type": "iou"})
    if matcher["type"] != "iou":
        if args.family != "retinanet":
            raise SystemExit(f"training_matcher {matcher['type']!r} is for retinanet, not {args.family}")
        try:
            atss.use_training_matcher(model, matcher)
        except ValueError as error:
            raise SystemExit(f"the {name} config: {error}")
    frozen = freeze_stem(model, args.family, args.freeze)
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=lr, momentum=args.momentum)
    cpu_budget = args.minutes * 60.0 * args.threads
    wall_budget = args.max_wall_minutes * 60.0
    log(f"{name}: {len(samples)} training images, {sum(p.numel() for p in model.parameters())} parameters, "
        f"lr {lr}, batch {args.batch_size}, budget {args.minutes} min")

    set_train_mode(model, frozen)
    start, cpu_start = time.time(), time.process_time()
    iteration, seen, epoch = 0, 0, 0
    order = []
    running = {}
    while True:
        # the machine is shared: progress is CPU time used (as if on `threads` free cores), capped by wall time
        elapsed = time.time() - start
        progress = max((time.process_time() - cpu_start) / cpu_budget, elapsed / wall_budget)
        if progress >= 1.0:
            break
        warmup = min(1.0, (iteration + 1) / args.warmup_iterations) if args.warmup_iterations else 1.0
        warmup = 0.001 + (1 - 0.001) * warmup
        current_lr = lr * warmup * 0.5 * (1.0 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = current_lr
        if len(order) < args.batch_size:
            indices = list(range(len(samples)))
            rng.shuffle(indices)
            order.extend(indices)
            epoch += 1
        batch = [load_sample(samples[i], rng) for i in order[:args.batch_size]]
        del order[:args.batch_size]
        images, targets = [b[0] for b in batch], [b[1] for b in batch]
        losses = model(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss is {loss.item()} at iteration {iteration}: {losses}")
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], args.clip)
        optimizer.step()
        iteration += 1
        seen += len(images)
        for k, v in losses.items():
            running[k] = running.get(k, 0.0) + v.item()
        if iteration % args.log_every == 0:
            elapsed = time.time() - start
            parts = " ".join(f"{k} {v / args.log_every:.3f}" for k, v in running.items())
            cpu = (time.process_time() - cpu_start) / args.threads
            log(f"it {iteration} ep {epoch} wall {elapsed / 60:.1f} min cpu/{args.threads} {cpu / 60:.1f} min "
                f"lr {current_lr:.5f} {parts} {seen / elapsed:.2f} img/s wall, {seen / cpu:.2f} img/s cpu")
            running = {}
    train_seconds = time.time() - start
    train_cpu_seconds = (time.process_time() - cpu_start) / args.threads
    log(f"trained {iteration} iterations ({seen} images, {seen / len(samples):.2f} epochs) in "
        f"{train_seconds / 60:.1f} min wall, {train_cpu_seconds / 60:.1f} min of {args.threads} cores")

    model.eval()
    torch.save(shapes_models.inference_state_dict(model), os.path.join(args.work_dir, f"{name}.pth"))
    folder = export(model, config, name, args.out_root)
    shipped, _ = eval_shapes_torch.load_shipped(name, args.out_root)
    stats, results, eval_seconds = eval_shapes_torch.evaluate_model(
        shipped, config, results_path=os.path.join(args.work_dir, f"{name}_val_results.json"))
    named = dict(zip(eval_shapes_torch.STAT_NAMES, stats))
    log(" ".join(f"{k} {named[k]:.3f}" for k in eval_shapes_torch.STAT_NAMES[:6]))
    eval_shapes_torch.write_golden(shipped, config, name, 3, detectors_dir=args.out_root)
    summary = {
        "model": name, "family": args.family, "command": " ".join(["python", "detectors/tools/train_shapes.py"] + sys.argv[1:]),
        "previous_rounds": previous_rounds,
        "train_images": len(samples), "iterations": iteration, "images_seen": seen,
        "epochs": seen / len(samples), "train_wall_minutes": train_seconds / 60,
        "train_cpu_minutes_per_thread": train_cpu_seconds / 60, "batch_size": args.batch_size,
        "lr": lr, "momentum": args.momentum, "weight_decay": args.weight_decay,
        "warmup_iterations": args.warmup_iterations, "clip": args.clip, "freeze": args.freeze, "seed": args.seed,
        "threads": args.threads, "malloc_tuned": malloc_tuned, "val_stats": named, "val_eval_seconds": eval_seconds,
        "weights_bytes": os.path.getsize(os.path.join(folder, "weights.safetensors")),
        "parameters": sum(v.numel() for v in shapes_models.inference_state_dict(model).values()),
    }
    with open(os.path.join(folder, "training.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    write_readme(folder, summary, config)
    log(f"wrote {folder}")


if __name__ == "__main__":
    main()
