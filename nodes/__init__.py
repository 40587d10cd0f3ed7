"""pconv's ComfyUI node pack (loaded by the repository's root ``__init__.py``).

Only relative imports inside: ComfyUI has its own top-level ``nodes`` module, so this package is
never imported as ``nodes``. ``core`` and ``files`` are free of ComfyUI imports; the other
modules need a running ComfyUI.
"""
