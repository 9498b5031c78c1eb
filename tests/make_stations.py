"""The bundled panel demo, ``demo:stations_daily.csv``: synthetic daily rides at 8 stations over two years.

Run ``python -m tests.make_stations`` to write it again; ``tests/test_panel.py`` checks that the bundled
file is what this makes. Each station has its own scale (from about 10 to about 10,000 rides a day), a
weekly cycle of its own shape, a yearly swell and seeded noise; the station "harbour" opened in
November 2023, so it is too short for the first tuning period and is left out of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "hpt" / "demo" / "stations_daily.csv"
STATIONS = {  # id: (mean rides a day, weekend dip, first day)
    "airport": (9000.0, 0.1, "2023-01-01"), "central": (12000.0, 0.45, "2023-01-01"),
    "docks": (300.0, 0.3, "2023-01-01"), "harbour": (800.0, -0.2, "2023-11-01"),
    "market": (2500.0, -0.35, "2023-01-01"), "north": (60.0, 0.25, "2023-01-01"),
    "park": (900.0, -0.6, "2023-01-01"), "river": (12.0, 0.2, "2023-01-01"),
}


def stations() -> pd.DataFrame:
    rng = np.random.default_rng(2024)
    parts = []
    for sid, (level, weekend, first) in STATIONS.items():
        days = pd.date_range(first, "2024-12-31", freq="D")
        week = np.where(days.day_of_week >= 5, 1 - weekend, 1.0)
        year = 1 + 0.25 * np.sin(2 * np.pi * (days.day_of_year - 100) / 365.25)
        noise = rng.normal(1.0, 0.08, len(days))
        rides = np.maximum(np.rint(level * week * year * noise), 0).astype(int)
        parts.append(pd.DataFrame({"station": sid, "date": days.strftime("%Y-%m-%d"), "rides": rides}))
    return pd.concat(parts, ignore_index=True)


def csv_text() -> str:
    return str(stations().to_csv(index=False, lineterminator="\n"))


if __name__ == "__main__":
    OUT.write_text(csv_text(), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
