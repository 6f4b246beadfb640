#!/usr/bin/env python3
"""Writes torch goldens for TensorCore's ops whose exact semantics matter.

Run with the reference environment (torch 1.13):

    /work/main/.venv-ref/bin/python eval/tools/make_tensor_goldens.py

Outputs, under Tests/TensorCoreTests/Fixtures/:
  tensor_goldens.bin   every tensor, raw little-endian float32, back to back
  tensor_goldens.json  index: per case the op, its parameters, and each tensor's
                       shape and offset (in floats) into the .bin file

Shapes are small and inputs seeded, so the files stay a few hundred KB and the
output is reproducible.
"""

import json
import pathlib
import struct

import torch
import torch.nn.functional as F
from torchvision.ops.misc import FrozenBatchNorm2d

torch.set_num_threads(2)
torch.manual_seed(20240607)

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "TensorCoreTests" / "Fixtures"

data: list[float] = []
cases: list[dict] = []


def store(tensor: torch.Tensor) -> dict:
    tensor = tensor.detach().to(torch.float32).contiguous()
    entry = {"shape": list(tensor.shape), "offset": len(data)}
    data.extend(tensor.reshape(-1).tolist())
    return entry


def add(name: str, op: str, params: dict, **tensors: torch.Tensor) -> None:
    cases.append({"name": name, "op": op, "params": params,
                  "tensors": {key: store(value) for key, value in tensors.items()}})


def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale


# maxPool2d: output sizes in ceil mode, incl. the "last window starts inside" rule, NaN.
for shape, kernel, stride, padding, dilation, ceil_mode in [
    ((1, 2, 5, 5), 2, 2, 1, 1, True),       # ceil gives 4, the rule trims to 3
    ((1, 2, 5, 5), 2, 2, 1, 1, False),
    ((1, 2, 19, 19), 2, 2, 0, 1, True),     # SSD-VGG's pool3 on an odd map
    ((1, 2, 7, 9), 3, 2, 0, 1, True),
    ((1, 2, 7, 9), 3, 2, 0, 1, False),
    ((2, 3, 8, 11), 3, 2, 1, 2, True),      # dilation
    ((1, 1, 6, 6), 3, 3, 1, 1, True),
    ((1, 2, 10, 10), 3, 1, 1, 1, False),    # SSD-VGG's pool5
    ((1, 3, 12, 13), 3, 2, 1, 1, False),    # ResNet stem
    ((1, 1, 1, 1), 1, 1, 0, 1, True),
    ((1, 1, 4, 6), (2, 3), (1, 2), (1, 1), (1, 1), True),
]:
    x = randn(*shape)
    add(f"maxPool2d {shape} k{kernel} s{stride} p{padding} d{dilation} ceil={ceil_mode}", "maxPool2d",
        {"kernel": list(torch.nn.modules.utils._pair(kernel)), "stride": list(torch.nn.modules.utils._pair(stride)),
         "padding": list(torch.nn.modules.utils._pair(padding)), "dilation": list(torch.nn.modules.utils._pair(dilation)),
         "ceilMode": ceil_mode},
        input=x, output=F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceil_mode))
x = randn(1, 1, 6, 6)
x[0, 0, 1, 1] = float("nan")
add("maxPool2d NaN propagates", "maxPool2d",
    {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "ceilMode": False},
    input=x, output=F.max_pool2d(x, 3, 2, 1))

# adaptiveAvgPool2d: uneven windows, 1×1 (torch takes the mean path), identity, upsampling.
for shape, size in [((1, 3, 7, 10), (3, 4)), ((1, 2, 5, 5), (1, 1)), ((1, 2, 3, 3), (5, 7)),
                    ((2, 2, 7, 7), (7, 7)), ((1, 1, 10, 3), (4, 2)), ((1, 4, 13, 11), (6, 6))]:
    x = randn(*shape)
    add(f"adaptiveAvgPool2d {shape} -> {size}", "adaptiveAvgPool2d", {"size": list(size)},
        input=x, output=F.adaptive_avg_pool2d(x, size))

# upsampleNearest with explicit sizes: non-integer ratios, exact 2×, identity, downsampling.
for shape, size in [((1, 2, 5, 7), (8, 11)), ((1, 2, 5, 7), (3, 4)), ((1, 2, 5, 7), (10, 14)),
                    ((1, 2, 5, 7), (13, 5)), ((1, 2, 5, 7), (5, 7)), ((1, 2, 13, 19), (25, 38)),
                    ((1, 1, 3, 7), (29, 3)), ((1, 1, 7, 7), (1, 1))]:
    x = randn(*shape)
    add(f"upsampleNearest {shape} -> {size}", "upsampleNearest", {"size": list(size)},
        input=x, output=F.interpolate(x, size=size, mode="nearest"))

# resizeBilinear with explicit sizes (align_corners=False).
for shape, size in [((1, 3, 10, 13), (17, 9)), ((1, 3, 10, 13), (23, 31)), ((1, 3, 10, 13), (1, 1)),
                    ((1, 3, 10, 13), (10, 13)), ((1, 3, 10, 13), (5, 6)), ((2, 1, 1, 1), (3, 4)),
                    ((1, 2, 7, 5), (1, 9)),
                    # One channel: the reference build takes another arithmetic path.
                    ((1, 1, 6, 9), (10, 15)), ((2, 1, 11, 7), (5, 13))]:
    x = randn(*shape)
    add(f"resizeBilinear {shape} -> {size}", "resizeBilinear", {"size": list(size)},
        input=x, output=F.interpolate(x, size=size, mode="bilinear", align_corners=False))

# resizeBilinear with a scale factor, as torchvision's detection transform (recompute True) and
# without recomputing. 800/480 is formed in float32 and read back as a Python float, as
# torchvision 0.14's `scale.item()`.
detection_scale = (torch.tensor(800.0) / torch.tensor(480.0)).item()
for shape in [(1, 3, 6, 9), (1, 2, 11, 7)]:
    for scale in [1.7, 0.63, 2.5, detection_scale, 1.0 / 3.0]:
        for recompute in [True, False]:
            x = torch.rand(*shape) * 255
            add(f"resizeBilinear {shape} scale={scale!r} recompute={recompute}", "resizeBilinearScale",
                {"scaleFactor": scale, "recompute": recompute},
                input=x, output=F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False,
                                              recompute_scale_factor=recompute))

# l2Normalize: torchvision SSD's L2Norm, incl. an all-zero position (eps clamps the norm).
x = randn(2, 5, 3, 4)
x[1, :, 2, 3] = 0
scale = torch.rand(5) * 20 + 1
add("l2Normalize [2,5,3,4]", "l2Normalize", {"eps": 1e-12},
    input=x, scale=scale, output=scale.view(1, -1, 1, 1) * F.normalize(x))

# Activations on a grid through the kinks plus random values.
grid = torch.cat([torch.linspace(-8, 8, 161), torch.tensor([-3.0, 3.0, -3.0001, 2.9999, 0.0, 6.0, -6.0, 6.0001]),
                  randn(64, scale=5)])
add("hardswish", "hardswish", {}, input=grid, output=F.hardswish(grid))
add("hardsigmoid", "hardsigmoid", {}, input=grid, output=F.hardsigmoid(grid))
add("sigmoid", "sigmoid", {}, input=grid, output=torch.sigmoid(grid))
add("relu6", "relu6", {}, input=grid, output=F.relu6(grid))
add("relu", "relu", {}, input=grid, output=F.relu(grid))

x = randn(2, 5, 3, scale=5)
add("softmax axis 1", "softmax", {"axis": 1}, input=x, output=F.softmax(x, dim=1))
add("softmax axis -1", "softmax", {"axis": -1}, input=x, output=F.softmax(x, dim=-1))

# conv2d: torch's own convolution for the geometry options.
for shape, out_channels, kernel, stride, padding, dilation, groups, bias in [
    ((1, 4, 9, 11), 6, 3, 2, 1, 2, 2, True),
    ((2, 3, 10, 10), 5, 7, 2, 3, 1, 1, True),
    ((1, 6, 8, 7), 12, 3, 1, 1, 1, 6, True),    # depthwise with channel multiplier 2
    ((1, 8, 9, 9), 8, 3, 2, 1, 1, 8, False),    # depthwise, stride 2
    ((1, 8, 5, 6), 4, 1, 1, 0, 1, 4, True),     # grouped 1×1
    ((1, 5, 6, 6), 3, (1, 3), (2, 1), (0, 1), 1, 1, True),
]:
    x = randn(*shape)
    kernel_hw = torch.nn.modules.utils._pair(kernel)
    weight = randn(out_channels, shape[1] // groups, *kernel_hw, scale=0.3)
    b = randn(out_channels) if bias else None
    tensors = {"input": x, "weight": weight,
               "output": F.conv2d(x, weight, b, stride, padding, dilation, groups)}
    if b is not None:
        tensors["bias"] = b
    add(f"conv2d {shape} o{out_channels} k{kernel} s{stride} p{padding} d{dilation} g{groups}", "conv2d",
        {"stride": list(torch.nn.modules.utils._pair(stride)), "padding": list(torch.nn.modules.utils._pair(padding)),
         "dilation": list(torch.nn.modules.utils._pair(dilation)), "groups": groups},
        **tensors)

# batchNorm (eval mode) and linear.
x = randn(2, 6, 4, 5, scale=3)
weight, bias, mean, var = randn(6), randn(6), randn(6), torch.rand(6) + 0.1
for eps in [1e-5, 0.0]:
    add(f"batchNorm eps={eps}", "batchNorm", {"eps": eps, "rounding": "fused"}, input=x, weight=weight, bias=bias,
        runningMean=mean, runningVar=var,
        output=F.batch_norm(x, mean, var, weight, bias, training=False, eps=eps))
    frozen = FrozenBatchNorm2d(6, eps=eps)
    frozen.weight.copy_(weight)
    frozen.bias.copy_(bias)
    frozen.running_mean.copy_(mean)
    frozen.running_var.copy_(var)
    add(f"FrozenBatchNorm2d eps={eps}", "batchNorm", {"eps": eps, "rounding": "frozen"}, input=x, weight=weight,
        bias=bias, runningMean=mean, runningVar=var, output=frozen(x))
x = randn(3, 17)
weight, bias = randn(5, 17), randn(5)
add("linear [3,17] x [5,17]", "linear", {}, input=x, weight=weight, bias=bias, output=F.linear(x, weight, bias))

FIXTURES.mkdir(parents=True, exist_ok=True)
with open(FIXTURES / "tensor_goldens.bin", "wb") as handle:
    handle.write(struct.pack(f"<{len(data)}f", *data))
index = {"generator": "eval/tools/make_tensor_goldens.py", "torch": torch.__version__,
         "format": "float32 little-endian", "data": "tensor_goldens.bin", "cases": cases}
with open(FIXTURES / "tensor_goldens.json", "w") as handle:
    # One case a line, so that a diff shows which cases changed.
    header = {key: value for key, value in index.items() if key != "cases"}
    handle.write(json.dumps(header, allow_nan=False)[:-1] + ', "cases": [\n')
    handle.write(",\n".join(json.dumps(case, allow_nan=False) for case in cases))
    handle.write("\n]}\n")
print(f"{len(cases)} cases, {len(data)} floats ({4 * len(data) / 1024:.0f} KiB)")
