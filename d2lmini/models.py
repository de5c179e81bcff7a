"""Models the chapters build and later chapters reuse.  Each is small enough to read in one screen.

* :class:`LeNet`, :class:`ModernLeNet` (chapter 06); :class:`AlexNet`, :class:`MiniAlexNet` (chapter 07);
  :class:`ResidualBlock`, :class:`ResNet` (chapter 08).
* Every model checks its input first (:func:`_check_input`), so a wrong shape gives one sentence that says
  what to do, not a shape error from deep inside a layer.
"""

from __future__ import annotations

from torch import Tensor, nn


def _check_input(x: Tensor, channels: int, name: str, size: int | None = None) -> None:
    """Explain a wrong input shape in one sentence instead of a matmul error deep inside the model.

    ``size`` (optional) is the height and width the model was built for, e.g. 224 for :class:`AlexNet`.
    """
    if x.ndim == 3 and x.shape[0] == channels:
        raise ValueError(
            f"{name} expects a batch [N, {channels}, H, W] but got one image {tuple(x.shape)}: "
            f"add the batch dimension with x.unsqueeze(0)."
        )
    if x.ndim == 4 and x.shape[1] != channels:
        raise ValueError(
            f"{name} expects {channels} channel(s), shape [N, {channels}, H, W], but got {x.shape[1]} "
            f"channels in {tuple(x.shape)}: "
            + ("convert the images to grayscale (e.g. x.mean(dim=1, keepdim=True))." if channels == 1
               else f"give it images with {channels} channels.")
        )
    if x.ndim != 4:
        raise ValueError(f"{name} expects input of shape [N, {channels}, H, W], got {tuple(x.shape)}.")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(
            f"{name} is built for {size}x{size} images but got {x.shape[-2]}x{x.shape[-1]}: resize them, "
            f"e.g. torch.nn.functional.interpolate(x, size={size})."
        )


class LeNet(nn.Module):
    """LeNet-5 as in D2L: sigmoid activations and average pooling, for 28x28 one-channel images."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
            nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, 1, type(self).__name__)
        return self.classifier(self.features(x))


class ModernLeNet(nn.Module):
    """LeNet with today's habits: ReLU, max pooling and batch normalisation (same layer sizes)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.BatchNorm1d(120), nn.ReLU(),
            nn.Linear(120, 84), nn.BatchNorm1d(84), nn.ReLU(), nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, 1, type(self).__name__)
        return self.classifier(self.features(x))


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky, Sutskever & Hinton, 2012) as D2L gives it, for ``[N, 1, 224, 224]`` images
    (Fashion-MNIST resized): five convolutions, three overlapping max-pools, two 4096-wide dense layers
    with dropout.  About 46.8 million parameters."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * 5 * 5, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, type(self).__name__, size=224)
        return self.classifier(self.features(x))


class MiniAlexNet(nn.Module):
    """AlexNet's recipe scaled down to 28x28 Fashion-MNIST: a wide first convolution, overlapping 3x3/2
    max-pools, a stack of three 3x3 convolutions, ReLU everywhere, and two dense layers with dropout.
    ``width`` scales the number of channels and ``hidden`` the dense layers; ``dropout=0`` turns dropout
    off.  ``batch_norm=True`` puts a ``BatchNorm2d`` after every convolution (which
    then has no bias), as :class:`ModernLeNet` has, so that the two can be compared on equal terms.
    Weights start with Kaiming (He) initialisation, as chapter 06 recommends for ReLU networks."""

    def __init__(self, num_classes: int = 10, width: int = 16, hidden: int = 256,
                 dropout: float = 0.5, batch_norm: bool = False) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 3 * width

        def conv(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            if not batch_norm:
                return [nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2), nn.ReLU()]
            return [nn.Conv2d(c_in, c_out, kernel_size=k, padding=k // 2, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            *conv(1, c1, 5),                                   # 28x28 (AlexNet: 11x11, stride 4)
            nn.MaxPool2d(kernel_size=3, stride=2),             # 13x13
            *conv(c1, c2, 3),
            nn.MaxPool2d(kernel_size=3, stride=2),             # 6x6
            *conv(c2, c3, 3), *conv(c3, c3, 3), *conv(c3, c2, 3),
            nn.MaxPool2d(kernel_size=3, stride=2),             # 2x2
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 2 * 2, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():  # He (Kaiming) init: PyTorch's default is too small for 8 plain ReLU layers
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, 1, type(self).__name__, size=28)
        return self.classifier(self.features(x))


class ResidualBlock(nn.Module):
    """The basic residual block of He et al. (2016), chapter 08: ``relu(F(x) + shortcut(x))`` with
    ``F`` = 3x3 conv, BN, ReLU, 3x3 conv, BN.  When the shape changes (``stride`` > 1 or a new channel
    count) the shortcut is a 1x1 convolution with that stride, then BN (a projection); otherwise it is
    the identity.  ``skip=False`` drops the shortcut (the "plain" block the chapter compares with);
    ``batch_norm=False`` drops the BN layers (the convolutions then get biases)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, skip: bool = True,
                 batch_norm: bool = True) -> None:
        super().__init__()

        def norm() -> nn.Module:
            return nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

        bias = not batch_norm
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = norm()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.bn2 = norm()
        self.skip = skip
        self.shortcut: nn.Module | None = None
        if skip:
            self.shortcut = nn.Identity()
            if stride != 1 or in_channels != out_channels:  # shapes differ: a 1x1 projection
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias), norm())

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn1(self.conv1(x)).relu()
        y = self.bn2(self.conv2(y))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return y.relu()


class ResNet(nn.Module):
    """The CIFAR ResNet of He et al. (2016, section 4.2), chapter 08: a 3x3 convolution with ``width``
    channels, then three stages of ``n`` :class:`ResidualBlock` s with ``width``, 2·``width`` and
    4·``width`` channels (the first block of stages 2 and 3 halves the height and width), global average
    pooling and one linear layer.  ``depth`` = 6n + 2 weighted layers: 20 (the default, ResNet-20, about
    0.27 M parameters), 8, 14, 32, 44, 56, 110.  Works for any image size (32x32 CIFAR-10, 28x28
    Fashion-MNIST with ``in_channels=1``).  ``skip=False`` gives the plain network of the same depth,
    ``batch_norm=False`` the same without BN.  Convolutions start with He (Kaiming) initialisation."""

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3, width: int = 16,
                 skip: bool = True, batch_norm: bool = True) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"ResNet depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), "
                             f"got {depth}")
        self.depth, self.in_channels, self.skip, self.batch_norm = depth, in_channels, skip, batch_norm
        n = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=not batch_norm),
            nn.BatchNorm2d(width) if batch_norm else nn.Identity(), nn.ReLU())
        stages, c_in = [], width
        for i, c_out in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(ResidualBlock(c_in, c_out, stride, skip=skip, batch_norm=batch_norm))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, type(self).__name__)
        return self.head(self.stage3(self.stage2(self.stage1(self.stem(x)))))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, skip={self.skip}, batch_norm={self.batch_norm}"
