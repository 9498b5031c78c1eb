"""A DLinear written from scratch, without hpt: the yardstick issue 21 quotes (no tuning).

Per-window scaling (each input window minus its mean, divided by its standard deviation, the
forecast scaled back), trend = centred moving average of 25 steps (ends padded with the first
and last values), one linear map each for trend and remainder, MAE loss, Adam lr 1e-3, batch
32, 20 epochs, one torch thread. Trained on the windows of --train-start .. --holdout (default:
the 12 months before the hold-out), scored on every window whose targets lie in the hold-out
(inputs may reach back before it), against seasonal naive on the same windows: the same
windows and seasonal naive as ``hpt final --holdout-start`` (forecast_quality.py's rows).

    python benchmarks/dlinear_reference.py                                   # hourly, a year's training
    python benchmarks/dlinear_reference.py --train-start 2014-09-01          # 3 months, as hpt final's default
    python benchmarks/dlinear_reference.py --cosine                          # the lr along a cosine to 0
    python benchmarks/dlinear_reference.py --data ../shared/data/seattle_weather_daily.csv --target temp_max \\
        --time-column date --lookback 28 --horizon 7 --season 7 --holdout 2015-10-01 --train-start 2012-01-01
"""

from __future__ import annotations

import argparse
import time
from importlib.resources import files

import numpy as np
import pandas as pd
import torch
from torch import nn


class DLinear(nn.Module):
    def __init__(self, lookback: int, horizon: int, kernel: int, window: bool) -> None:
        super().__init__()
        self.trend, self.rest = nn.Linear(lookback, horizon), nn.Linear(lookback, horizon)
        self.kernel, self.window = kernel, window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = x.mean(1, keepdim=True), x.std(1, keepdim=True, unbiased=False) + 1e-5
        if self.window:
            x = (x - mean) / std
        front, back = (self.kernel - 1) // 2, self.kernel // 2
        padded = torch.cat([x[:, :1].expand(-1, front), x, x[:, -1:].expand(-1, back)], 1)
        trend = nn.functional.avg_pool1d(padded[:, None], self.kernel, 1)[:, 0]
        out = self.trend(trend) + self.rest(x - trend)
        return out * std + mean if self.window else out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="demo:electricity_hourly.csv")
    p.add_argument("--target", default="y")
    p.add_argument("--time-column", default="ts")
    p.add_argument("--lookback", type=int, default=168)
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--season", type=int, default=24, help="seasonal naive's season in steps [24]")
    p.add_argument("--holdout", default="2014-12-01", help="the hold-out's start; it runs to the end of the data")
    p.add_argument("--train-start", default="2013-12-01")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--loss", choices=("mae", "mse"), default="mae")
    p.add_argument("--scaler", choices=("window", "standard"), default="window")
    p.add_argument("--kernel", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cosine", action="store_true", help="the learning rate decays to 0 over the epochs (cosine)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    path = files("hpt.demo").joinpath(a.data[5:]) if a.data.startswith("demo:") else a.data
    frame = pd.read_csv(path, parse_dates=[a.time_column], index_col=a.time_column).sort_index()
    y = frame[a.target].to_numpy(np.float64)
    start, end = (int(frame.index.searchsorted(pd.Timestamp(t))) for t in (a.train_start, a.holdout))
    lb, h = a.lookback, a.horizon
    mean, std = y[start:end].mean(), y[start:end].std()  # standardised on the train part, as hpt does
    z = torch.tensor((y - mean) / std, dtype=torch.float32)
    x_train = torch.stack([z[s:s + lb] for s in range(start, end - lb - h + 1)])
    y_train = torch.stack([z[s + lb:s + lb + h] for s in range(start, end - lb - h + 1)])
    x_test = torch.stack([z[s:s + lb] for s in range(end - lb, len(z) - lb - h + 1)])
    torch.manual_seed(a.seed)
    model = DLinear(lb, h, a.kernel, a.scaler == "window")
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.L1Loss() if a.loss == "mae" else nn.MSELoss()
    steps = a.epochs * -(-len(x_train) // a.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if a.cosine else None
    began = time.perf_counter()
    for _ in range(a.epochs):
        order = torch.randperm(len(x_train))
        for i in range(0, len(x_train), a.batch):
            idx = order[i:i + a.batch]
            opt.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
            if sched is not None:
                sched.step()
    seconds = time.perf_counter() - began
    with torch.no_grad():
        forecast = model(x_test).numpy() * std + mean
    ends = np.arange(end - 1, len(y) - h)  # each window's last input row
    steps = np.arange(1, h + 1)
    actual = np.stack([y[e + steps] for e in ends])
    naive = np.stack([y[e + steps - a.season * -(-steps // a.season)] for e in ends])
    mae, mse = np.abs(forecast - actual).mean(), ((forecast - actual) ** 2).mean()
    n_mae, n_mse = np.abs(naive - actual).mean(), ((naive - actual) ** 2).mean()
    print(f"{len(x_train)} train windows ({frame.index[start]} .. {a.holdout}), {len(ends)} hold-out windows; "
          f"trained in {seconds:.1f} s")
    print(f"dlinear: mae {mae:.4g} mse {mse:.4g}; seasonal naive: mae {n_mae:.4g} mse {n_mse:.4g}; "
          f"ratio mae {mae / n_mae:.3f} mse {mse / n_mse:.3f}")


if __name__ == "__main__":
    main()
