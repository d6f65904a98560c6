"""The rootbench SOFIE architectures, re-created in PyTorch with seeded weights and exported to ONNX.

rootbench (root-project/rootbench, ``root/tmva/sofie``) times SOFIE against
onnxruntime on a fixed set of models; its ONNX files are not redistributed
here, so each architecture is rebuilt from its name and published shape:
the same layer types, widths, depths, input sizes and fixed batch sizes
(static shapes).  Weights are seeded: every Linear/Conv weight is drawn
He-normal (so the 14-layer conv stacks neither vanish nor explode) and every
BatchNorm gets random statistics, so that folding or skipping one would show
in the outputs.

torch is imported only inside the builders: the onnxruntime benchmark
process imports this module for the model list and must not pay for torch
in its peak memory.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

SEED = 20240
OPSET = 17


@dataclass(frozen=True)
class Spec:
    """One benchmark model: its builder, input shape (batch first) and whether it is heavy to run."""

    name: str
    build: Callable[[], Any]  # () -> torch.nn.Module in eval mode, weights not yet seeded
    shape: tuple[int, ...]
    heavy: bool = False
    group: str = "rootbench"  # rootbench; or the HEP family's "layer" and "model" (benchmarks/hep.py)
    opset: int = OPSET

    @property
    def batch(self) -> int:
        return self.shape[0]


# ---------------------------------------------------------------- architectures


def _mlp(widths: list[int], act: Callable[[], Any], out_act: Callable[[], Any] | None = None) -> Any:
    """Linear layers ``widths[0] -> ... -> widths[-1]`` with ``act`` between them and ``out_act`` after."""
    from torch import nn

    layers: list[Any] = []
    for k, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(widths) - 2:
            layers.append(act())
    if out_act is not None:
        layers.append(out_act())
    return nn.Sequential(*layers)


def linear() -> Any:
    """rootbench Linear_*: 100 -> 9 x [Linear 50 + ReLU] -> 10."""
    from torch import nn

    return _mlp([100] + [50] * 9 + [10], nn.ReLU)


def higgs_dense() -> Any:
    """rootbench higgs_model_dense: 7 -> 5 x [Linear 100 + ReLU] -> 2, sigmoid."""
    from torch import nn

    return _mlp([7] + [100] * 5 + [2], nn.ReLU, nn.Sigmoid)


def simple_nn_alice() -> Any:
    """rootbench SimpleNN_Alice: 16 -> 100 -> 50 -> 1 with LeakyReLU."""
    from torch import nn

    return _mlp([16, 100, 50, 1], lambda: nn.LeakyReLU(0.01))


def recurrent(kind: str) -> Any:
    """rootbench RNN/GRU/LSTM_d10_L20_h8_B1: 10 features, 20 steps, hidden 8; Linear 8 -> 2 on the last state."""
    from torch import nn

    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(nn, kind)(10, 8, batch_first=True)
            self.fc = nn.Linear(8, 2)

        def forward(self, x: Any) -> Any:
            _, state = self.rnn(x)
            h = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
            return self.fc(h[-1])

    return Recurrent()


def conv_stack(channels: list[int]) -> Any:
    """5x5 convolutions (padding 2, so 100x100 stays 100x100) with ReLU, ``channels[0] -> ... -> channels[-1]``."""
    from torch import nn

    layers: list[Any] = []
    for a, b in zip(channels, channels[1:]):
        layers += [nn.Conv2d(a, b, 5, padding=2), nn.ReLU()]
    return nn.Sequential(*layers)


CONV_L14 = [1, 2, 4, 8, 16, 32, 64, 128, 64, 32, 16, 8, 4, 2, 1]


def conv3d() -> Any:
    """rootbench Conv3d_d32_L4_B1: four 3x3x3 Conv3d layers (padding 1) with ReLU on a 32^3 volume."""
    from torch import nn

    layers: list[Any] = []
    for a, b in zip([1, 8, 16, 32], [8, 16, 32, 1]):
        layers += [nn.Conv3d(a, b, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


def conv_transpose() -> Any:
    """rootbench ConvTrans2d_B1: three stride-2 ConvTranspose2d layers, 16x8x8 -> 1x64x64, sigmoid out."""
    from torch import nn

    return nn.Sequential(nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1), nn.Sigmoid())


def generator() -> Any:
    """rootbench Generator: 14 -> 14 -> 20 -> 50 -> 100 -> 40500, Linear + BatchNorm1d + ReLU, sigmoid out."""
    from torch import nn

    widths = [14, 14, 20, 50, 100]
    layers: list[Any] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(100, 40500), nn.Sigmoid())


def conv_bn(a: int, b: int, k: int, stride: int, dims: int = 2) -> list[Any]:
    """Convolution without bias (padding k // 2) and BatchNorm, in 2-D or 3-D."""
    from torch import nn

    conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
    return [conv(a, b, k, stride=stride, padding=k // 2, bias=False), norm(b)]


def basic_block(a: int, b: int, stride: int) -> Any:
    """ResNet's BasicBlock: two 3x3 conv + BatchNorm, ReLU between and after the residual sum."""
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(*conv_bn(a, b, 3, stride), nn.ReLU(), *conv_bn(b, b, 3, 1))
            self.skip = nn.Sequential(*conv_bn(a, b, 1, stride)) if stride != 1 or a != b else nn.Identity()
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.relu(self.body(x) + self.skip(x))

    return BasicBlock()


def resnet18() -> Any:
    """torchvision's resnet18 (BasicBlock x [2, 2, 2, 2], 1000 classes), written out: torchvision is not a dependency."""
    from torch import nn

    blocks: list[Any] = []
    for a, b, stride in [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]:
        blocks += [basic_block(a, b, stride), basic_block(b, b, 1)]
    return nn.Sequential(*conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1), *blocks,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))


def relu() -> Any:
    """Not in rootbench: one ReLU on one float, so that its time is each engine's per-call floor."""
    from torch import nn

    return nn.Sequential(nn.ReLU())


SPECS: dict[str, Spec] = {s.name: s for s in [
    Spec("Overhead_Relu_B1", relu, (1, 1)),
    Spec("Linear_event", linear, (1, 100)),
    Spec("Linear_16", linear, (16, 100)),
    Spec("Linear_32", linear, (32, 100)),
    Spec("Linear_64", linear, (64, 100)),
    Spec("higgs_model_dense", higgs_dense, (1, 7)),
    Spec("SimpleNN_Alice", simple_nn_alice, (1, 16)),
    Spec("RNN_d10_L20_h8_B1", lambda: recurrent("RNN"), (1, 20, 10)),
    Spec("GRU_d10_L20_h8_B1", lambda: recurrent("GRU"), (1, 20, 10)),
    Spec("LSTM_d10_L20_h8_B1", lambda: recurrent("LSTM"), (1, 20, 10)),
    Spec("Conv_d100_L1_B1", lambda: conv_stack([1, 2]), (1, 1, 100, 100)),
    Spec("Conv_d100_L14_B1", lambda: conv_stack(CONV_L14), (1, 1, 100, 100), heavy=True),
    Spec("Conv_d100_L14_B32", lambda: conv_stack(CONV_L14), (32, 1, 100, 100), heavy=True),
    Spec("Conv3d_d32_L4_B1", conv3d, (1, 1, 32, 32, 32), heavy=True),
    Spec("ConvTrans2d_B1", conv_transpose, (1, 16, 8, 8)),
    Spec("Generator_B1", generator, (1, 14)),
    Spec("Generator_B64", generator, (64, 14)),
    Spec("resnet18", resnet18, (1, 3, 224, 224), heavy=True),
]}


# ---------------------------------------------------------------- weights, inputs, files


def spec(name: str) -> Spec:
    """The Spec of a model of either family (rootbench's here, the HEP family's in benchmarks/hep.py)."""
    from . import hep

    return {**SPECS, **hep.SPECS, **hep.OFFGRID}[name]


def module(name: str) -> Any:
    """The seeded torch module of model ``name``, in eval mode (the same weights in every process)."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    net = spec(name).build().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)) and m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    return net


def inputs(name: str) -> np.ndarray:
    """The seeded float32 input of model ``name`` (standard normal, its fixed batch size)."""
    return np.random.default_rng(SEED).standard_normal(spec(name).shape, dtype=np.float32)


def folder(root: Path) -> Path:
    """``root/models-<hash of this file and hep.py>``: editing an architecture re-exports every model."""
    digest = hashlib.sha256(Path(__file__).read_bytes() + (Path(__file__).parent / "hep.py").read_bytes())
    digest = digest.hexdigest()[:12]
    return root / f"models-{digest}"


def onnx_path(name: str, root: Path) -> Path:
    """The ONNX file of model ``name`` under ``root``, exported on first use (opset 17, static shapes)."""
    path = folder(root) / f"{name}.onnx"
    if not path.exists():
        import torch

        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(module(name), (torch.from_numpy(inputs(name)),), buffer, dynamo=False,
                              opset_version=spec(name).opset, input_names=["x"], output_names=["y"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)  # atomic: a concurrent or interrupted export leaves no half-written model
    return path
