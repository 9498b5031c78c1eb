"""Built-in forecasting models: each maps ``(B, lookback, n_features)`` to ``(B, horizon)``.

A builder with a ``future_rows`` argument takes inputs known ahead (:mod:`hpt.future`): its input
is then ``(B, lookback + future_rows, n_features)``, the forecast steps' rows after the lookback."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "build_attention",
    "build_cnn",
    "build_dlinear",
    "build_gru",
    "build_linear",
    "build_lstm",
    "build_lstm_attention",
    "build_mlp",
    "build_nhits",
    "build_nlinear",
    "build_patchtst",
    "build_tcn",
    "tcn_receptive_field",
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
              num_layers: int = 2, dropout: float = 0.1, future_rows: int = 0) -> nn.Module:
    return MLP(n_features, lookback + future_rows, horizon, hidden_size, num_layers, dropout)


# The recurrent models read the future rows after the lookback's, as any other steps.
def build_lstm(n_features: int, lookback: int, horizon: int, hidden_size: int = 64,
               num_layers: int = 1, dropout: float = 0.1, future_rows: int = 0) -> nn.Module:
    return Recurrent(nn.LSTM, n_features, horizon, hidden_size, num_layers, dropout)


def build_gru(n_features: int, lookback: int, horizon: int, hidden_size: int = 64,
              num_layers: int = 1, dropout: float = 0.1, future_rows: int = 0) -> nn.Module:
    return Recurrent(nn.GRU, n_features, horizon, hidden_size, num_layers, dropout)


def build_cnn(n_features: int, lookback: int, horizon: int, channels: int = 32,
              kernel_size: int = 3, num_layers: int = 3, dropout: float = 0.1) -> nn.Module:
    return CausalCNN(n_features, horizon, channels, kernel_size, num_layers, dropout)


def build_attention(n_features: int, lookback: int, horizon: int, d_model: int = 32,
                    num_heads: int = 4, num_layers: int = 2, dropout: float = 0.1, future_rows: int = 0) -> nn.Module:
    return Attention(n_features, lookback + future_rows, horizon, d_model, num_heads, num_layers, dropout)


def build_lstm_attention(n_features: int, lookback: int, horizon: int, hidden_size: int = 64,
                         num_layers: int = 1, dropout: float = 0.1, future_rows: int = 0) -> nn.Module:
    return LSTMAttention(n_features, horizon, hidden_size, num_layers, dropout)


# -- linear families (Zeng et al., AAAI 2023) ------------------------------------------
# Each flattens the window (every input column, target first) into one linear map; with the
# target alone that is the paper's lookback -> horizon map.


class Linear(nn.Module):
    def __init__(self, n_features: int, lookback: int, horizon: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features * lookback, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))  # type: ignore[no-any-return]


class NLinear(Linear):
    """Every column minus its last value in the lookback, the linear map, the target's last value added back."""

    def __init__(self, n_features: int, lookback: int, horizon: int, future_rows: int = 0) -> None:
        super().__init__(n_features, lookback + future_rows, horizon)
        self.past = lookback

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x[:, self.past - 1:self.past, :]
        return self.linear((x - last).flatten(1)) + last[:, :, 0]  # type: ignore[no-any-return]


def moving_average(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """The centred moving average of each column of ``(B, L, F)`` over `kernel` steps, the ends
    padded with the first and last values so the trend has the window's length."""
    front, back = (kernel - 1) // 2, kernel // 2
    padded = torch.cat([x[:, :1].expand(-1, front, -1), x, x[:, -1:].expand(-1, back, -1)], dim=1)
    return nn.functional.avg_pool1d(padded.transpose(1, 2), kernel, stride=1).transpose(1, 2)


class DLinear(nn.Module):
    """Trend (moving average) and remainder of the window, one linear map each, summed."""

    def __init__(self, n_features: int, lookback: int, horizon: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel = min(kernel_size, lookback)
        self.trend = nn.Linear(n_features * lookback, horizon)
        self.remainder = nn.Linear(n_features * lookback, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trend = moving_average(x, self.kernel)
        return self.trend(trend.flatten(1)) + self.remainder((x - trend).flatten(1))  # type: ignore[no-any-return]


# -- N-HiTS (Challu et al., AAAI 2023) --------------------------------------------------


class NHiTSBlock(nn.Module):
    """Max-pool the input at `pool` steps, an MLP, a backcast of the target's window and
    `points` forecast values interpolated linearly to the horizon."""

    def __init__(self, n_features: int, lookback: int, horizon: int, pool: int, points: int,
                 hidden_size: int, num_layers: int, dropout: float, backcast: bool) -> None:
        super().__init__()
        self.pool = pool
        self.horizon = horizon
        width = n_features * math.ceil(lookback / pool)
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        self.mlp = nn.Sequential(*layers)
        self.backcast = nn.Linear(width, lookback) if backcast else None  # the last block's would go unused
        self.forecast = nn.Linear(width, points)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        pooled = nn.functional.max_pool1d(x.transpose(1, 2), self.pool, ceil_mode=True)
        h = self.mlp(pooled.flatten(1))
        coarse = self.forecast(h)
        if coarse.shape[1] == self.horizon:
            fine = coarse
        else:
            fine = nn.functional.interpolate(coarse[:, None], size=self.horizon, mode="linear",
                                             align_corners=True)[:, 0]
        return (self.backcast(h) if self.backcast is not None else None), fine


class NHiTS(nn.Module):
    """Stacks from coarse to fine: stack i of S pools at ``rate**(S-1-i)`` steps and forecasts
    ``ceil(horizon / rate**(S-1-i))`` points; each block takes the target's residual after the
    blocks before it (features as they are) and adds its forecast to the sum."""

    def __init__(self, n_features: int, lookback: int, horizon: int, hidden_size: int, num_stacks: int,
                 num_layers: int, pool_rate: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for i in range(num_stacks):
            scale = pool_rate ** (num_stacks - 1 - i)
            self.blocks.append(NHiTSBlock(n_features, lookback, horizon, min(scale, lookback),
                                          max(1, math.ceil(horizon / scale)), hidden_size, num_layers, dropout,
                                          backcast=i < num_stacks - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual, features = x[:, :, 0], x[:, :, 1:]
        forecast = torch.zeros(x.shape[0], 1, device=x.device, dtype=x.dtype)
        for block in self.blocks:
            backcast, part = block(torch.cat([residual[:, :, None], features], dim=2))
            if backcast is not None:
                residual = residual - backcast
            forecast = forecast + part
        return forecast


# -- PatchTST (Nie et al., ICLR 2023) ---------------------------------------------------


class PatchTST(nn.Module):
    """Each input column on its own (channel independence, shared weights): cut into patches of
    `patch_len` steps every `stride` (the end padded with the last value by one stride), each
    patch a token of a Transformer encoder; a linear head on every column's flattened tokens."""

    def __init__(self, n_features: int, lookback: int, horizon: int, patch_len: int, stride: int,
                 d_model: int, num_heads: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of num_heads={num_heads}")
        self.patch_len = min(patch_len, lookback)
        self.stride = stride
        self.patches = (lookback + stride - self.patch_len) // stride + 1
        self.embed = nn.Linear(self.patch_len, d_model)
        self.position = nn.Parameter(torch.zeros(1, self.patches, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward=2 * d_model, dropout=dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(n_features * self.patches * d_model, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f = x.shape
        series = x.transpose(1, 2)  # (B, F, L)
        series = torch.cat([series, series[:, :, -1:].expand(-1, -1, self.stride)], dim=2)
        tokens = series.unfold(2, self.patch_len, self.stride)  # (B, F, patches, patch_len)
        h = self.encoder(self.embed(tokens.reshape(b * f, self.patches, self.patch_len)) + self.position)
        return self.head(self.drop(h.reshape(b, -1)))  # type: ignore[no-any-return]


# -- TCN (Bai et al., 2018) ---------------------------------------------------------------


def tcn_levels(lookback: int, kernel_size: int) -> int:
    """The fewest residual levels whose receptive field covers `lookback` steps."""
    levels = 1
    while tcn_receptive_field(levels, kernel_size) < lookback:
        levels += 1
    return levels


def tcn_receptive_field(levels: int, kernel_size: int) -> int:
    """Steps one output sees: two causal convolutions per level, dilation ``2**level``."""
    return 1 + 2 * (kernel_size - 1) * (2**levels - 1)


class TemporalBlock(nn.Module):
    def __init__(self, width: int, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = (kernel_size - 1) * dilation
        self.net = nn.Sequential(
            nn.ConstantPad1d((pad, 0), 0.0), nn.Conv1d(width, channels, kernel_size, dilation=dilation),
            nn.ReLU(), nn.Dropout(dropout),
            nn.ConstantPad1d((pad, 0), 0.0), nn.Conv1d(channels, channels, kernel_size, dilation=dilation),
            nn.ReLU(), nn.Dropout(dropout),
        )
        self.skip = nn.Conv1d(width, channels, 1) if width != channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.net(x) + self.skip(x))


class TCN(nn.Module):
    """Residual levels of dilated causal convolutions, as many as the lookback needs; a linear
    head on the last step's channels."""

    def __init__(self, n_features: int, lookback: int, horizon: int, channels: int, kernel_size: int,
                 dropout: float) -> None:
        super().__init__()
        if kernel_size < 2:
            raise ValueError(f"kernel_size={kernel_size}: a tcn needs kernels of at least 2 steps")
        levels = tcn_levels(lookback, kernel_size)
        self.receptive_field = tcn_receptive_field(levels, kernel_size)
        self.levels = nn.Sequential(*(TemporalBlock(n_features if i == 0 else channels, channels, kernel_size,
                                                    2**i, dropout) for i in range(levels)))
        self.head = nn.Linear(channels, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.levels(x.transpose(1, 2))[:, :, -1])  # type: ignore[no-any-return]


def build_linear(n_features: int, lookback: int, horizon: int, future_rows: int = 0) -> nn.Module:
    return Linear(n_features, lookback + future_rows, horizon)


def build_nlinear(n_features: int, lookback: int, horizon: int, future_rows: int = 0) -> nn.Module:
    return NLinear(n_features, lookback, horizon, future_rows)


def build_dlinear(n_features: int, lookback: int, horizon: int, kernel_size: int = 25,
                  future_rows: int = 0) -> nn.Module:
    return DLinear(n_features, lookback + future_rows, horizon, kernel_size)


def build_nhits(n_features: int, lookback: int, horizon: int, hidden_size: int = 128, num_stacks: int = 3,
                num_layers: int = 2, pool_rate: int = 2, dropout: float = 0.0) -> nn.Module:
    return NHiTS(n_features, lookback, horizon, hidden_size, num_stacks, num_layers, pool_rate, dropout)


def build_patchtst(n_features: int, lookback: int, horizon: int, patch_len: int = 16, stride: int = 8,
                   d_model: int = 64, num_heads: int = 4, num_layers: int = 2, dropout: float = 0.1) -> nn.Module:
    return PatchTST(n_features, lookback, horizon, patch_len, stride, d_model, num_heads, num_layers, dropout)


def build_tcn(n_features: int, lookback: int, horizon: int, channels: int = 32, kernel_size: int = 3,
              dropout: float = 0.1, future_rows: int = 0) -> nn.Module:
    return TCN(n_features, lookback + future_rows, horizon, channels, kernel_size, dropout)
