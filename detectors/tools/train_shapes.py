"""Trains one small `<family>_mobilenet_v2_shapes` detector on datasets/shapes on the CPU and ships it.

Recipe (docs/training-notes.md): torchvision model built from config data (shapes_models.py) on
mobilenet_v2 with the ImageNet weights, features[0:4] frozen, other BatchNorm trainable; SGD
momentum 0.9, weight decay on weights only, batch 8, linear warm-up, cosine decay on elapsed time so
the run ends on schedule, gradient clipping at 10, random horizontal and vertical flips.

At the end it writes detectors/<name>/{config.json, weights.safetensors (F16, torchvision keys,
FrozenBatchNorm2d layout), README.md, golden_detections.json}; AP is measured on the shipped file.

Usage (2 cores, in the background):
    nice -n 10 python detectors/tools/train_shapes.py --family fcos --minutes 25 > out/shapes/fcos.log 2>&1 &
"""

import argparse
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
import eval_shapes_torch  # noqa: E402
import safetensors_io  # noqa: E402
import shapes_models  # noqa: E402

REPO = eval_shapes_torch.REPO
IMAGENET_WEIGHTS = os.path.join(REPO, "..", "shared", "data", "weights", "mobilenet_v2-b0353104.pth")
TRAIN_DIR = os.path.join(REPO, "datasets", "shapes", "train")
DEFAULT_LR = {"fcos": 0.01, "retinanet": 0.01, "ssdlite": 0.01, "fasterrcnn": 0.01}


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


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
    with open(os.path.join(folder, "architecture.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=shapes_models.FAMILIES)
    parser.add_argument("--minutes", type=float, default=25.0, help="training time budget (wall clock)")
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
    args = parser.parse_args(argv)

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
    frozen = freeze_stem(model, args.family, args.freeze)
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=lr, momentum=args.momentum)
    budget = args.minutes * 60.0
    log(f"{name}: {len(samples)} training images, {sum(p.numel() for p in model.parameters())} parameters, "
        f"lr {lr}, batch {args.batch_size}, budget {args.minutes} min")

    set_train_mode(model, frozen)
    start = time.time()
    iteration, seen, epoch = 0, 0, 0
    order = []
    running = {}
    while True:
        elapsed = time.time() - start
        if elapsed >= budget:
            break
        warmup = min(1.0, (iteration + 1) / args.warmup_iterations) if args.warmup_iterations else 1.0
        warmup = 0.001 + (1 - 0.001) * warmup
        current_lr = lr * warmup * 0.5 * (1.0 + math.cos(math.pi * min(1.0, elapsed / budget)))
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
            log(f"it {iteration} ep {epoch} {elapsed / 60:.1f} min lr {current_lr:.5f} {parts} "
                f"{seen / elapsed:.2f} img/s")
            running = {}
    train_seconds = time.time() - start
    log(f"trained {iteration} iterations ({seen} images, {seen / len(samples):.2f} epochs) in {train_seconds / 60:.1f} min")

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
        "train_images": len(samples), "iterations": iteration, "images_seen": seen,
        "epochs": seen / len(samples), "train_minutes": train_seconds / 60, "batch_size": args.batch_size,
        "lr": lr, "momentum": args.momentum, "weight_decay": args.weight_decay,
        "warmup_iterations": args.warmup_iterations, "clip": args.clip, "freeze": args.freeze, "seed": args.seed,
        "threads": args.threads, "val_stats": named, "val_eval_seconds": eval_seconds,
        "weights_bytes": os.path.getsize(os.path.join(folder, "weights.safetensors")),
        "parameters": sum(v.numel() for v in shapes_models.inference_state_dict(model).values()),
    }
    with open(os.path.join(args.work_dir, f"{name}_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log(f"wrote {folder} and {args.work_dir}/{name}_summary.json")


if __name__ == "__main__":
    main()
