"""Hugging Face Spaces runs ``app.py``: this starts the web demo (same as ``python -m demo``)."""

from demo.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
