"""``ray start ...`` kept on the loopback address: ``python tests/ray_node.py start --head ...``.

Ray 2.60 replaces 127.0.0.1 (in ``--node-ip-address`` and ``--address``) with the
machine's network address and then listens on every interface, unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; with that variable, though, ``ray start`` refuses
to join a second node ("Multi-node Ray clusters are not supported on Windows and OSX").
This runs the real ``ray start`` with the variable set for every Ray process, and tells
only ``ray start``'s own multi-node guard otherwise, so that both nodes of the test
cluster register as 127.0.0.1 and listen only there.
"""

from __future__ import annotations

import os
import sys
import types

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when ray is imported, here and in every child

import ray._private.ray_constants as constants  # noqa: E402
import ray.scripts.scripts as scripts  # noqa: E402

scripts.ray_constants = types.SimpleNamespace(**{**vars(constants), "ENABLE_RAY_CLUSTER": True})  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(scripts.main())
