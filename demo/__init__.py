"""pconv's web demo: ``python -m demo`` (also the Hugging Face Space's app).

Importing this package keeps Gradio and the Hub quiet: no usage analytics and no version
checks (so the demo starts offline), unless the environment already says otherwise.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__all__ = ["build_app", "main"]


def __getattr__(name: str) -> Any:  # gradio is imported only when the app is wanted
    if name == "build_app":
        from demo.app import build_app

        return build_app
    if name == "main":
        from demo.__main__ import main

        return main
    raise AttributeError(f"module 'demo' has no attribute {name!r}")
