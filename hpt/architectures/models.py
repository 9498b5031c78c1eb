"""Built-in forecasting models: each maps ``(B, lookback, n_features)`` to ``(B, horizon)``."""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "build_attention",
    "build_cnn",
    "build_gru",
    "build_lstm",
    "build_lstm_attention",
    "build_mlp",
]


class MLP(nn.Module):
    def __init__(self, n_features: int, lookback: int, horizon: int, hidden_size: int,
                 num_layers: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_features * lookback
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        layers.append(nn.Linear(width, horizon))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.LSTM] | type[nn.GRU], n_features: int, horizon: int,
                 hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = cell(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                        dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(self.drop(out[:, -1]))  # type: ignore[no-any-return]


class CausalCNN(nn.Module):
    def __init__(self, n_features: int, horizon: int, channels: int, kernel_size: int,
                 num_layers: int, dropout: float) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = n_features
        for i in range(num_layers):
            dilation = 2**i
            blocks += [
                nn.ConstantPad1d(((kernel_size - 1) * dilation, 0), 0.0),  # causal: pad the past only
                nn.Conv1d(width, channels, kernel_size, dilation=dilation),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = channels
        self.conv = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2))
        return self.head(h[:, :, -1])  # type: ignore[no-any-return]


class Attention(nn.Module):
    def __init__(self, n_features: int, lookback: int, horizon: int, d_model: int,
                 num_heads: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of num_heads={num_heads}")
        self.embed = nn.Linear(n_features, d_model)
        self.position = nn.Parameter(torch.zeros(1, lookback, d_model))
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward=2 * d_model,
                                           dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.position)
        return self.head(h[:, -1])  # type: ignore[no-any-return]


class LSTMAttention(nn.Module):
    def __init__(self, n_features: int, horizon: int, hidden_size: int, num_layers: int,
                 dropout: float) -> None:
        super().__init__()
        self.rnn = nn.LSTM(n_features, hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.score = nn.Linear(hidden_size, 1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        weights = torch.softmax(self.score(out), dim=1)
        context = (weights * out).sum(dim=1)
        return self.head(self.drop(torch.cat([context, out[:, -1]], dim=1)))  # type: ignore[no-any-return]


def build_mlp(n_features: int, lookback: int, horizon: int, hidden_size: int = 64,
              num_layers: int = 2, dropout: float = 0.1) -> nn.Module:
    return MLP(n_features, lookback, horizon, hidden_size, num_layers, dropout)


def build_lstm(n_features: int, lookback: int, horizon: int, hidden_size: int = 64,
               num_layers: int = 1, dropout: float = 0.1) -> nn.Module:
    return Recurrent(nn.LSTM, n_features, horizon, hidden_size, num_layers, dropout)


def build_gru(n_features: int, lookback: int, horizon: int, hidden_size: int = 64,
              num_layers: int = 1, dropout: float = 0.1) -> nn.Module:
    return Recurrent(nn.GRU, n_features, horizon, hidden_size, num_layers, dropout)


def build_cnn(n_features: int, lookback: int, horizon: int, channels: int = 32,
              kernel_size: int = 3, num_layers: int = 3, dropout: float = 0.1) -> nn.Module:
    return CausalCNN(n_features, horizon, channels, kernel_size, num_layers, dropout)


def build_attention(n_features: int, lookback: int, horizon: int, d_model: int = 32,
                    num_heads: int = 4, num_layers: int = 2, dropout: float = 0.1) -> nn.Module:
    return Attention(n_features, lookback, horizon, d_model, num_heads, num_layers, dropout)


def build_lstm_attention(n_features: int, lookback: int, horizon: int, hidden_size: int = 64,
                         num_layers: int = 1, dropout: float = 0.1) -> nn.Module:
    return LSTMAttention(n_features, horizon, hidden_size, num_layers, dropout)
