"""The RetinaFace error a user fixes by hand, importable without torch (the asset and the CLI use it)."""

from __future__ import annotations


class WeightsNotFoundError(FileNotFoundError):
    """No RetinaFace weights could be read or fetched; `reason` says why, `hint` where to put them."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(f"{reason}: {hint}" if hint else reason)
        self.reason, self.hint = reason, hint

    def __reduce__(self):  # noqa: ANN204 - keep reason and hint across processes
        return (type(self), (self.reason, self.hint))
