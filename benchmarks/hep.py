"""The models HEP deploys now, and their layers: the second benchmark family (issue 22).

rootbench's set (:mod:`benchmarks.models`) is dense, recurrent and large-image convolutional; analyses
now run particle transformers, small calorimeter CNNs (2-D and 3-D), point-cloud networks and Deep Sets.
This family has two groups, both seeded PyTorch modules exported to ONNX like rootbench's:

* ``layer``: a sweep of single layers at the sizes those models use (Conv 2-D with 1 to 64 channels on 8
  to 64 pixels, 3x3 and 5x5, stride 1 and 2; Conv 3-D with 1 to 8 channels on 8 to 32 voxels; max and
  average pooling 2-D and 3-D; attention blocks of 16 to 256 tokens, 64 to 128 features, 4 to 8 heads;
  LayerNorm; GELU as torch exports it (Erf chain, tanh approximation) and as the ``Gelu`` operator of
  opset 20; Softmax).  Goal: at most 1.0x onnxruntime (C++), one thread.
* ``model``: whole networks of those kinds: calorimeter CNNs, a ResNet of few channels, a particle
  transformer with attention mask and pair bias, a small encoder, a ParticleNet-style EdgeConv with
  k nearest neighbours, Deep Sets.  Goal: at most 0.8x onnxruntime.

Every model takes one float32 input (batch first); the transformer derives its padding mask and pair bias
from it, the EdgeConv its neighbours, so the C++ drivers need no second input.
"""

from __future__ import annotations

from typing import Any

from .models import Spec, basic_block, conv_bn

# ---------------------------------------------------------------- layers


def conv(dims: int, a: int, b: int, k: int, stride: int) -> Any:
    """One convolution with bias (padding k // 2) and ReLU, 1-D to 3-D."""
    from torch import nn

    layer = getattr(nn, f"Conv{dims}d")(a, b, k, stride=stride, padding=k // 2)
    return nn.Sequential(layer, nn.ReLU())


def pool(kind: str, dims: int, k: int, stride: int) -> Any:
    from torch import nn

    return getattr(nn, f"{kind}Pool{dims}d")(k, stride=stride)


def activation(form: str) -> Any:
    """GELU as exported: "erf" (Div, Erf, Add, Mul, Mul), "tanh" (the approximation's chain), or the opset-20
    ``Gelu`` operator ("op", exported at opset 20); or "softmax" over the last axis."""
    from torch import nn

    if form == "softmax":
        return nn.Softmax(dim=-1)
    return nn.GELU(approximate="tanh" if form == "tanh" else "none")


def layer_norm(features: int) -> Any:
    from torch import nn

    return nn.LayerNorm(features)


def feed_forward(features: int, hidden: int) -> Any:
    """A transformer layer's feed-forward block on (batch, tokens, features): Linear to ``hidden``, GELU (as torch
    exports it: Erf), Linear back; its second product is deep (``hidden`` terms per output)."""
    from torch import nn

    return nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, features))


def attention_module(features: int, heads: int, mask: bool = False, pair_bias: bool = False) -> Any:
    """Multi-head self-attention on (batch, tokens, features), written out as ParT and most HEP transformers
    do: Q, K, V projections, softmax(Q K^T / sqrt(d) + bias) V per head, output projection.  The padding mask
    and pair bias come from ``raw`` (the particles' input features; default: ``x``): ``mask``: particles
    whose first feature is below -1 are padding (about one in six with normal inputs) and get no attention;
    ``pair_bias``: a Linear of the first four features' pairwise differences, one value per head (ParT's
    interaction term)."""
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(features, 3 * features)
            self.out = nn.Linear(features, features)
            self.bias = nn.Linear(4, heads) if pair_bias else None

        def forward(self, x: Any, raw: Any = None) -> Any:
            raw = x if raw is None else raw
            b, n, f = x.shape
            d = f // heads
            q, k, v = self.qkv(x).reshape(b, n, 3, heads, d).permute(2, 0, 3, 1, 4)
            logits = q @ k.transpose(-1, -2) * (d ** -0.5)
            if self.bias is not None:
                pairs = raw[:, :, None, :4] - raw[:, None, :, :4]        # (b, n, n, 4)
                logits = logits + self.bias(pairs).permute(0, 3, 1, 2)   # (b, heads, n, n)
            if mask:
                padding = (raw[:, :, 0] < -1.0)[:, None, None, :]        # keys that are padding
                logits = logits.masked_fill(padding, float("-inf"))
            y = torch.softmax(logits, dim=-1) @ v
            return self.out(y.transpose(1, 2).reshape(b, n, f))

    return Attention()


# ---------------------------------------------------------------- whole models


def encoder(features: int, heads: int, layers: int, mlp: int, mask: bool = False, pair_bias: bool = False,
            inputs: int = 0, classes: int = 5) -> Any:
    """Pre-norm transformer encoder (LayerNorm, attention, residual; LayerNorm, Linear-GELU-Linear, residual)
    over particles, mean-pooled into a classifier.  ``inputs``: per-particle input features embedded to
    ``features`` by a Linear (0: the input already has ``features``)."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(features), nn.LayerNorm(features)
            self.attn = attention_module(features, heads, mask, pair_bias)
            self.mlp = nn.Sequential(nn.Linear(features, mlp), nn.GELU(), nn.Linear(mlp, features))

        def forward(self, x: Any, raw: Any) -> Any:
            x = x + self.attn(self.norm1(x), raw)
            return x + self.mlp(self.norm2(x))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(inputs, features) if inputs else nn.Identity()
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.norm = nn.LayerNorm(features)
            self.head = nn.Linear(features, classes)

        def forward(self, x: Any) -> Any:
            h = self.embed(x)
            for block in self.blocks:
                h = block(h, x)
            return self.head(self.norm(h).mean(dim=1))

    return Encoder()


def calo_cnn_2d() -> Any:
    """A calorimeter-image classifier on 1 x 32 x 32: conv-BN-ReLU blocks of 16 and 32 channels with 2x2
    max pooling, global average pooling, a dense head."""
    from torch import nn

    return nn.Sequential(*conv_bn(1, 16, 3, 1), nn.ReLU(), *conv_bn(16, 16, 3, 1), nn.ReLU(), nn.MaxPool2d(2),
                         *conv_bn(16, 32, 3, 1), nn.ReLU(), nn.MaxPool2d(2), *conv_bn(32, 32, 3, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))


def calo_cnn_3d() -> Any:
    """A 3-D calorimeter (shower) classifier on 1 x 24 x 24 x 24: Conv3d-BN-ReLU with 8 and 16 channels,
    2x2x2 max pooling, global average pooling, a dense head."""
    from torch import nn

    return nn.Sequential(*conv_bn(1, 8, 3, 1, dims=3), nn.ReLU(), nn.MaxPool3d(2),
                         *conv_bn(8, 16, 3, 1, dims=3), nn.ReLU(), nn.MaxPool3d(2),
                         *conv_bn(16, 16, 3, 1, dims=3), nn.ReLU(),
                         nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))


def resnet_small() -> Any:
    """A ResNet of few channels on 4 x 32 x 32 (jet images with four channels): a 16-channel stem, three
    BasicBlocks (the second with stride 2 and 32 channels), global pooling, a dense head."""
    from torch import nn

    return nn.Sequential(*conv_bn(4, 16, 3, 1), nn.ReLU(), basic_block(16, 16, 1), basic_block(16, 32, 2),
                         basic_block(32, 32, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2))


def edge_conv(k: int = 16, features: int = 8, widths: tuple[int, ...] = (64, 64, 64)) -> Any:
    """ParticleNet's EdgeConv on (batch, particles, features): the k nearest neighbours in the first two
    features (eta, phi) by pairwise distance and TopK; edge features (x_i, x_j - x_i) through a shared
    Linear-BatchNorm-ReLU stack; mean over the neighbours plus a Linear shortcut; global average, a head."""
    import torch
    from torch import nn

    class EdgeConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            for a, b in zip((2 * features,) + widths, widths):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.mlp = nn.Sequential(*layers)
            self.shortcut = nn.Linear(features, widths[-1])
            self.head = nn.Sequential(nn.Linear(widths[-1], 64), nn.ReLU(), nn.Linear(64, 2))

        def forward(self, x: Any) -> Any:
            b, n, f = x.shape
            p = x[:, :, :2]
            sq = (p * p).sum(-1)
            dist = sq[:, :, None] - 2 * p @ p.transpose(1, 2) + sq[:, None, :]
            idx = torch.topk(-dist, k + 1, dim=-1).indices[:, :, 1:]               # (b, n, k), self excluded
            neighbours = torch.gather(x[:, None, :, :].expand(b, n, n, f), 2, idx[..., None].expand(b, n, k, f))
            centre = x[:, :, None, :].expand(b, n, k, f)
            edges = self.mlp(torch.cat([centre, neighbours - centre], dim=-1)).mean(dim=2)
            return self.head(torch.relu(edges + self.shortcut(x)).mean(dim=1))

    return EdgeConv()


def deep_sets(features: int = 8, width: int = 64) -> Any:
    """Deep Sets (energy-flow-network-like): phi, a per-particle Linear-ReLU stack; the sum over particles;
    rho, a dense classifier."""
    from torch import nn

    class DeepSets(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.phi = nn.Sequential(nn.Linear(features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                     nn.Linear(width, width), nn.ReLU())
            self.rho = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))

        def forward(self, x: Any) -> Any:
            return self.rho(self.phi(x).sum(dim=1))

    return DeepSets()


def _layer(name: str, build: Any, shape: tuple, opset: int = 17) -> Spec:
    return Spec(name, build, shape, group="layer", opset=opset)


def _model(name: str, build: Any, shape: tuple, heavy: bool = False) -> Spec:
    return Spec(name, build, shape, heavy=heavy, group="model")


SPECS: dict[str, Spec] = {s.name: s for s in [
    # Conv 2-D: channels in -> out, image, kernel, stride
    _layer("Conv2d_1to16_32px_k3", lambda: conv(2, 1, 16, 3, 1), (1, 1, 32, 32)),
    _layer("Conv2d_4to16_16px_k3", lambda: conv(2, 4, 16, 3, 1), (1, 4, 16, 16)),
    _layer("Conv2d_16to16_16px_k3", lambda: conv(2, 16, 16, 3, 1), (1, 16, 16, 16)),
    _layer("Conv2d_16to32_24px_k3_s2", lambda: conv(2, 16, 32, 3, 2), (1, 16, 24, 24)),
    _layer("Conv2d_32to32_16px_k3", lambda: conv(2, 32, 32, 3, 1), (1, 32, 16, 16)),
    _layer("Conv2d_32to32_24px_k3", lambda: conv(2, 32, 32, 3, 1), (1, 32, 24, 24)),
    _layer("Conv2d_64to64_8px_k3", lambda: conv(2, 64, 64, 3, 1), (1, 64, 8, 8)),
    _layer("Conv2d_8to8_64px_k3", lambda: conv(2, 8, 8, 3, 1), (1, 8, 64, 64)),
    _layer("Conv2d_4to8_32px_k5", lambda: conv(2, 4, 8, 5, 1), (1, 4, 32, 32)),
    _layer("Conv2d_16to16_16px_k5", lambda: conv(2, 16, 16, 5, 1), (1, 16, 16, 16)),
    _layer("Conv2d_8to16_64px_k5_s2", lambda: conv(2, 8, 16, 5, 2), (1, 8, 64, 64)),
    _layer("Conv2d_16to16_16px_k3_B32", lambda: conv(2, 16, 16, 3, 1), (32, 16, 16, 16)),
    # Conv 3-D
    _layer("Conv3d_1to8_16vx_k3", lambda: conv(3, 1, 8, 3, 1), (1, 1, 16, 16, 16)),
    _layer("Conv3d_4to8_8vx_k3", lambda: conv(3, 4, 8, 3, 1), (1, 4, 8, 8, 8)),
    _layer("Conv3d_8to8_16vx_k3", lambda: conv(3, 8, 8, 3, 1), (1, 8, 16, 16, 16)),
    _layer("Conv3d_8to8_32vx_k3_s2", lambda: conv(3, 8, 8, 3, 2), (1, 8, 32, 32, 32)),
    # pooling
    _layer("MaxPool2d_16ch_32px", lambda: pool("Max", 2, 2, 2), (1, 16, 32, 32)),
    _layer("MaxPool2d_32ch_24px_k3s2", lambda: pool("Max", 2, 3, 2), (1, 32, 24, 24)),
    _layer("AvgPool2d_16ch_32px", lambda: pool("Avg", 2, 2, 2), (1, 16, 32, 32)),
    _layer("MaxPool3d_8ch_16vx", lambda: pool("Max", 3, 2, 2), (1, 8, 16, 16, 16)),
    _layer("AvgPool3d_8ch_16vx", lambda: pool("Avg", 3, 2, 2), (1, 8, 16, 16, 16)),
    # attention blocks: tokens, features, heads
    _layer("Attention_16tok_64f_4h", lambda: attention_module(64, 4), (1, 16, 64)),
    _layer("Attention_64tok_64f_4h", lambda: attention_module(64, 4), (1, 64, 64)),
    _layer("Attention_128tok_128f_8h", lambda: attention_module(128, 8), (1, 128, 128)),
    _layer("Attention_256tok_128f_8h", lambda: attention_module(128, 8), (1, 256, 128)),
    _layer("Attention_128tok_128f_8h_mask_bias", lambda: attention_module(128, 8, True, True), (1, 128, 128)),
    _layer("FeedForward_128tok_128f_512h", lambda: feed_forward(128, 512), (1, 128, 128)),
    # normalization and activations
    _layer("LayerNorm_128tok_128f", lambda: layer_norm(128), (1, 128, 128)),
    _layer("GELU_erf_128x512", lambda: activation("erf"), (1, 128, 512)),
    _layer("GELU_tanh_128x512", lambda: activation("tanh"), (1, 128, 512)),
    _layer("GELU_op_128x512", lambda: activation("erf"), (1, 128, 512), opset=20),
    _layer("Softmax_8h_128x128", lambda: activation("softmax"), (1, 8, 128, 128)),
    # whole models
    _model("CaloCNN2d_32px", calo_cnn_2d, (1, 1, 32, 32)),
    _model("CaloCNN2d_32px_B32", calo_cnn_2d, (32, 1, 32, 32)),
    _model("CaloCNN3d_24vx", calo_cnn_3d, (1, 1, 24, 24, 24)),
    _model("ResNetSmall_4ch_32px", resnet_small, (1, 4, 32, 32)),
    _model("ParT_128p_4L", lambda: encoder(128, 8, 4, 512, mask=True, pair_bias=True, inputs=16), (1, 128, 16),
           heavy=True),
    _model("Encoder_50tok_64f_2L", lambda: encoder(64, 4, 2, 256, inputs=16), (1, 50, 16)),
    _model("EdgeConv_64p_k16", edge_conv, (1, 64, 8)),
    _model("DeepSets_64p", deep_sets, (1, 64, 8)),
    _model("DeepSets_64p_B64", deep_sets, (64, 64, 8)),
]}

# Shapes the kernels were not tuned on (``python -m benchmarks.hep_latency --offgrid``): channel counts that are
# not multiples of 8, odd and non-square images (33 x 33 jet images, 20 x 50 calorimeter eta x phi maps),
# 1-D convolutions over particles (DeepJet's pointwise ones), heads of 12 and 24 features, token counts that are
# not multiples of 16, batches of 4 to 16; the same goals as the family's.
OFFGRID: dict[str, Spec] = {s.name: s for s in [
    _layer("Conv2d_3to24_33px_k3", lambda: conv(2, 3, 24, 3, 1), (1, 3, 33, 33)),
    _layer("Conv2d_1to10_20x50_k3", lambda: conv(2, 1, 10, 3, 1), (1, 1, 20, 50)),
    _layer("Conv2d_12to20_20px_k3", lambda: conv(2, 12, 20, 3, 1), (1, 12, 20, 20)),
    _layer("Conv2d_24to48_12px_k3_s2", lambda: conv(2, 24, 48, 3, 2), (1, 24, 12, 12)),
    _layer("Conv2d_48to96_6px_k3", lambda: conv(2, 48, 96, 3, 1), (1, 48, 6, 6)),
    _layer("Conv2d_32to64_16px_k1", lambda: conv(2, 32, 64, 1, 1), (1, 32, 16, 16)),
    _layer("Conv2d_6to6_40px_k5", lambda: conv(2, 6, 6, 5, 1), (1, 6, 40, 40)),
    _layer("Conv2d_4to16_16px_k3_B8", lambda: conv(2, 4, 16, 3, 1), (8, 4, 16, 16)),
    _layer("Conv1d_16to64_25p_k1", lambda: conv(1, 16, 64, 1, 1), (1, 16, 25)),
    _layer("Conv1d_32to32_100_k3", lambda: conv(1, 32, 32, 3, 1), (1, 32, 100)),
    _layer("Conv3d_2to6_12x12x20_k3", lambda: conv(3, 2, 6, 3, 1), (1, 2, 12, 12, 20)),
    _layer("Conv3d_16to16_8vx_k3", lambda: conv(3, 16, 16, 3, 1), (1, 16, 8, 8, 8)),
    _layer("Conv3d_1to8_25vx_k3", lambda: conv(3, 1, 8, 3, 1), (1, 1, 25, 25, 25)),
    _layer("MaxPool2d_24ch_25px", lambda: pool("Max", 2, 2, 2), (1, 24, 25, 25)),
    _layer("AvgPool2d_12ch_33px_k3s2", lambda: pool("Avg", 2, 3, 2), (1, 12, 33, 33)),
    _layer("MaxPool3d_6ch_12x12x20", lambda: pool("Max", 3, 2, 2), (1, 6, 12, 12, 20)),
    _layer("MaxPool1d_64ch_100", lambda: pool("Max", 1, 2, 2), (1, 64, 100)),
    _layer("Attention_33tok_48f_4h", lambda: attention_module(48, 4), (1, 33, 48)),
    _layer("Attention_100tok_96f_4h", lambda: attention_module(96, 4), (1, 100, 96)),
    _layer("Attention_50tok_128f_8h_mask", lambda: attention_module(128, 8, mask=True), (1, 50, 128)),
    _layer("Attention_32tok_64f_4h_B8", lambda: attention_module(64, 4), (8, 32, 64)),
    _layer("FeedForward_50tok_96f_384h", lambda: feed_forward(96, 384), (1, 50, 96)),
    _layer("LayerNorm_50tok_96f", lambda: layer_norm(96), (1, 50, 96)),
    _layer("GELU_erf_100x300", lambda: activation("erf"), (1, 100, 300)),
    _layer("GELU_tanh_37x129", lambda: activation("tanh"), (1, 37, 129)),
    _layer("Softmax_3h_50x50", lambda: activation("softmax"), (1, 3, 50, 50)),
    _model("ParT_60p_2L_96f", lambda: encoder(96, 4, 2, 384, mask=True, pair_bias=True, inputs=7), (1, 60, 7)),
    _model("Encoder_30tok_48f_B16", lambda: encoder(48, 4, 1, 192, inputs=5), (16, 30, 5)),
    _model("EdgeConv_40p_k8_B4", lambda: edge_conv(8, 6, (32, 48)), (4, 40, 6)),
    _model("DeepSets_30p_5f_B16", lambda: deep_sets(5, 48), (16, 30, 5)),
    _model("CaloCNN2d_20x50", calo_cnn_2d, (1, 1, 20, 50)),
    _model("CaloCNN3d_12x12x20_B4", calo_cnn_3d, (4, 1, 12, 12, 20)),
    _model("ResNetSmall_4ch_24px_B4", resnet_small, (4, 4, 24, 24)),
]}

QUICK = ("Conv2d_16to16_16px_k3", "MaxPool3d_8ch_16vx", "GELU_erf_128x512", "LayerNorm_128tok_128f",
         "Attention_64tok_64f_4h", "CaloCNN2d_32px", "DeepSets_64p")
