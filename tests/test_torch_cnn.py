"""PyTorch convolutional networks exported to ONNX, against PyTorch itself.

Each model is built with seeded weights (BatchNorm running statistics
included, so the normalization is not the identity), exported in eval mode
with the TorchScript exporter (``dynamo=False``, opset 17, batch axis "N"),
compiled once and run at batch 1 and 4; the outputs must match PyTorch's at
rtol 1e-4 / atol 1e-5.

The exporter folds a BatchNorm that directly follows a Conv into the Conv's
weights; the models also place BatchNorm where it cannot be folded (after
pooling, after ConvTranspose, in 1-D/3-D) so ``BatchNormalization`` itself
runs.  A model whose operators are not all registered yet is skipped with
the missing operators in the reason.
"""

from __future__ import annotations

import functools
import io
from typing import Callable

import numpy as np
import onnx
import pytest

import sofie_rdf as sr

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is deprecated
nn = torch.nn

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (1, 4)


def _randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Seeded running mean/var and affine parameters for every BatchNorm (defaults make it the identity)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


# ---- models -----------------------------------------------------------------------

def conv1d_stack() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(3, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
        nn.BatchNorm1d(8),
        nn.Conv1d(8, 16, 3, stride=2, dilation=2, padding=2), nn.ReLU(), nn.AvgPool1d(2),
        nn.Conv1d(16, 16, 3, padding=1, groups=4), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
        nn.Flatten(), nn.Linear(16, 5),
    )


def conv2d_stack() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, groups=4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, 10),
    )


def conv3d_stack() -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(2, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(), nn.MaxPool3d(2),
        nn.BatchNorm3d(4),
        nn.Conv3d(4, 8, 3, stride=(1, 2, 2), padding=1), nn.ReLU(), nn.AvgPool3d(2),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 3),
    )


class Generator(nn.Module):
    """DCGAN-style: Linear -> (N, 32, 4, 4) -> two stride-2 ConvTranspose2d -> Sigmoid image."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 32 * 4 * 4)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 3, 3, padding=1), nn.Sigmoid(),
        )

    def forward(self, z):
        return self.up(self.fc(z).view(-1, 32, 4, 4))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BN, identity or 1x1-conv shortcut, ReLU after the sum."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem conv + max pool, three basic blocks (one downsampling), global average pool, linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        self.blocks = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 32, stride=2), BasicBlock(32, 32))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


# name -> (builder, input shape without the batch)
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "conv1d_stack": (conv1d_stack, (3, 32)),
    "conv2d_stack": (conv2d_stack, (3, 32, 32)),
    "conv3d_stack": (conv3d_stack, (2, 8, 16, 16)),
    "convtranspose_generator": (Generator, (16,)),
    "resnet": (ResNet, (3, 32, 32)),
}


# ---- export, compile, compare ----------------------------------------------------------

def export(name: str) -> tuple[nn.Module, onnx.ModelProto]:
    """The seeded eval-mode module and its ONNX export (opset 17, dynamic batch)."""
    build, shape = MODELS[name]
    torch.manual_seed(0)
    module = _randomize_bn(build(), seed=1).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (torch.zeros(2, *shape),), buf, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return module, onnx.load_from_string(buf.getvalue())


@functools.cache
def _compiled(name: str):
    """(module, session or the skip reason); one compilation per model for both batch sizes."""
    module, proto = export(name)
    try:
        model = sr.load(proto, name=name)
    except sr.UnsupportedOperatorError as exc:
        return module, "operators not registered yet: " + ", ".join(sorted(exc.unsupported))
    return module, sr.compile(model, backend="jit")


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_torch(name: str, batch: int) -> None:
    module, sess = _compiled(name)
    if isinstance(sess, str):
        pytest.skip(sess)
    x = np.random.default_rng(batch).standard_normal((batch, *MODELS[name][1])).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = sess.infer(x)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_exports_exercise_the_cnn_operators() -> None:
    """The exports contain what the file claims to test (BatchNormalization survives the exporter's folding)."""
    ops = {name: {n.op_type for n in export(name)[1].graph.node} for name in MODELS}
    assert {"Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool"} <= ops["conv2d_stack"]
    assert {"Conv", "BatchNormalization", "MaxPool", "AveragePool"} <= ops["conv1d_stack"] & ops["conv3d_stack"]
    assert {"ConvTranspose", "BatchNormalization", "Sigmoid"} <= ops["convtranspose_generator"]
    assert {"Conv", "Add", "MaxPool", "GlobalAveragePool"} <= ops["resnet"]
