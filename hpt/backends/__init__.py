"""Where trials run: one small protocol (:class:`Backend`), one module per engine.

- :mod:`hpt.backends.local`: worker processes on this machine (CPU slots, GPU pinning and packing).
- :mod:`hpt.backends.ray`: a Ray task per trial on a Ray cluster (``pip install 'hpt[ray]'``);
  :mod:`hpt.backends.ray_connect` connects to the cluster.
- :mod:`hpt.backends.fake`: scripted learning curves, no training (tests of schedulers and the runner).
"""

from __future__ import annotations

from hpt.backends.base import Backend

__all__ = ["Backend"]
