"""Models the chapters build and later chapters reuse.  Each is small enough to read in one screen.

* :class:`LeNet`, :class:`ModernLeNet` (chapter 06); :class:`AlexNet`, :class:`MiniAlexNet` (chapter 07).
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
    ``width`` scales the number of channels; ``dropout=0`` turns dropout off (chapter 07 compares).
    Weights start with Kaiming (He) initialisation, as chapter 06 recommends for ReLU networks."""

    def __init__(self, num_classes: int = 10, width: int = 16, hidden: int = 256,
                 dropout: float = 0.5) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 3 * width
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=5, padding=2), nn.ReLU(),        # 28x28 (AlexNet: 11x11, stride 4)
            nn.MaxPool2d(kernel_size=3, stride=2),                         # 13x13
            nn.Conv2d(c1, c2, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),                         # 6x6
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c3, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c2, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),                         # 2x2
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
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, 1, type(self).__name__, size=28)
        return self.classifier(self.features(x))

