"""Models the chapters build and later chapters reuse.  Each is small enough to read in one screen."""

from __future__ import annotations

from torch import Tensor, nn


def _check_input(x: Tensor, channels: int, name: str) -> None:
    """Explain a wrong input shape in one sentence instead of a matmul error deep inside the model."""
    if x.ndim == 3 and x.shape[0] == channels:
        raise ValueError(
            f"{name} expects a batch [N, {channels}, H, W] but got one image {tuple(x.shape)}: "
            f"add the batch dimension with x.unsqueeze(0)."
        )
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects input of shape [N, {channels}, H, W], got {tuple(x.shape)}.")


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
