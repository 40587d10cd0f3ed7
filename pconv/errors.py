"""Errors that mean "the user gave us something wrong", reported as one line, never a traceback."""


class PConvError(Exception):
    """A problem with the user's input (files, sizes, masks, checkpoints)."""


class InputError(PConvError):
    """An image or mask that cannot be read or does not fit."""


class CheckpointError(PConvError):
    """A weights file that is missing, corrupt or of the wrong architecture."""
