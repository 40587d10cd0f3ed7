"""The model zoo: pretrained partial-convolution models one line away.

``pconv.load_model("places2")`` goes through :func:`resolve`, which turns a zoo name, a Hub repo
id (``user/repo[@revision]``), a folder or a file into a verified local ``model.safetensors``:
from the Hugging Face Hub (``huggingface_hub``'s cache, offline mode and tokens), and when the
Hub copy is not reachable or not yet published, converted here from the pinned upstream
checkpoint and cached. ``python -m zoo list`` shows the entries.
"""

from .hub import download, resolve
from .registry import REGISTRY, ModelEntry, ZooError, get_entry, names

__all__ = [
    "REGISTRY",
    "ModelEntry",
    "ZooError",
    "download",
    "get_entry",
    "names",
    "resolve",
]
