"""EfficientNetB0 and ConvNeXtTiny written as a PyTorch user writes them (the shapes, widths,
depths and layer kinds of Keras's applications; channels-first modules, inputs permuted from the
stored channels-last images), the hand-written contenders of the application workloads."""
import torch
from torch import nn

F = nn.functional

# EfficientNetB0's stages: (kernel, repeats, filters in, filters out, expansion, stride).
_B0 = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
       (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))


def _drop_path(x, rate, training):
    """Drop whole samples of a residual branch (Keras: Dropout with noise_shape (N, 1, 1, 1))."""
    if not training or rate == 0:
        return x
    keep = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= rate).to(x.dtype)
    return x * keep / (1 - rate)


def _conv_bn(cin, cout, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]
    return nn.Sequential(*layers, nn.SiLU()) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand, drop):
        super().__init__()
        mid = cin * expand
        self.expand = _conv_bn(cin, mid, 1) if expand != 1 else nn.Identity()
        self.dw = _conv_bn(mid, mid, k, stride, groups=mid)
        se = max(1, int(cin * 0.25))
        self.se_reduce, self.se_expand = nn.Conv2d(mid, se, 1), nn.Conv2d(se, mid, 1)
        self.project = _conv_bn(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x):
        y = self.dw(self.expand(x))
        s = F.silu(self.se_reduce(y.mean((2, 3), keepdim=True)))
        y = self.project(y * torch.sigmoid(self.se_expand(s)))
        return x + _drop_path(y, self.drop, self.training) if self.residual else y


class EfficientNetB0(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.stem = _conv_bn(3, 32, 3, 2)
        blocks, b, total = [], 0, sum(s[1] for s in _B0)
        for k, n, cin, cout, expand, stride in _B0:
            for j in range(n):
                blocks.append(MBConv(cin if j == 0 else cout, cout, k, stride if j == 0 else 1,
                                     expand, 0.2 * b / total))
                b += 1
        self.blocks = nn.Sequential(*blocks)
        self.top = _conv_bn(320, 1280, 1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):  # x: (batch, h, w, 3) pixels in 0..255, as stored
        x = x.permute(0, 3, 1, 2) / 255.0
        x = self.top(self.blocks(self.stem(x)))
        return self.fc(self.dropout(x.mean((2, 3))))


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)  # to channels-last for LayerNorm and Linear
        y = self.gamma * self.fc2(F.gelu(self.fc1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ChannelsFirstLayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtTiny(nn.Module):
    def __init__(self, classes, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)
        down = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), ChannelsFirstLayerNorm(dims[0], 1e-6))]
        down += [nn.Sequential(ChannelsFirstLayerNorm(dims[i], 1e-6),
                               nn.Conv2d(dims[i], dims[i + 1], 2, 2)) for i in range(3)]
        self.down = nn.ModuleList(down)
        self.stages = nn.ModuleList(nn.Sequential(*[ConvNeXtBlock(d) for _ in range(n)])
                                    for n, d in zip(depths, dims))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], classes)

    def forward(self, x):  # x: (batch, h, w, 3) pixels in 0..255, as stored
        x = (x.permute(0, 3, 1, 2) - self.mean) / self.std
        for down, stage in zip(self.down, self.stages):
            x = stage(down(x))
        return self.head(self.norm(x.mean((2, 3))))


def twin(net_class, classes):
    """`(module, loss, postprocess)` as the workloads' `torch_twin` returns them."""
    def loss(outs, ys):
        return F.cross_entropy(outs, ys[0])
    return net_class(classes), loss, lambda out: torch.softmax(out, -1)

