"""Checking downloaded bytes against the hash OneDrive announces for them.

Personal OneDrive gives only QuickXorHash, which hashlib lacks; business drives may give SHA-1 or
SHA-256. A download (or a mirror file adopted on resume) counts only when its bytes match.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np


class QuickXorHash:
    """Microsoft's QuickXorHash (160-bit), fed in chunks; `b64digest()` is the form Graph returns.

    Byte k of the input is XORed into a 160-bit register at bit (11*k) mod 160, rotating; the
    length is XORed into the last 8 bytes. Since the position depends only on k mod 160, each chunk
    is folded into 160 columns with numpy and the rotation is done once at the end.
    """

    _WIDTH = 160
    _SHIFT = 11

    def __init__(self) -> None:
        self._columns = np.zeros(self._WIDTH, dtype=np.uint8)
        self._length = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = np.frombuffer(data, dtype=np.uint8)
        if view.size == 0:
            return
        whole = view.size - view.size % self._WIDTH
        folded = np.zeros(self._WIDTH, dtype=np.uint8)
        if whole:
            rows = view[:whole].view(np.uint64).reshape(-1, self._WIDTH // 8)
            folded ^= np.bitwise_xor.reduce(rows, axis=0).view(np.uint8)
        tail = view[whole:]
        folded[: tail.size] ^= tail
        offset = self._length % self._WIDTH  # column j of this chunk is byte (length + j) of the stream
        self._columns[offset:] ^= folded[: self._WIDTH - offset]
        self._columns[:offset] ^= folded[self._WIDTH - offset:]
        self._length += view.size

    def digest(self) -> bytes:
        width, mask = self._WIDTH, (1 << self._WIDTH) - 1
        register = 0
        for position, value in enumerate(self._columns.tolist()):
            if value:
                shift = position * self._SHIFT % width
                register ^= ((value << shift) | (value >> (width - shift))) & mask
        out = bytearray(register.to_bytes(width // 8, "little"))
        for i, byte in enumerate(self._length.to_bytes(8, "little")):
            out[width // 8 - 8 + i] ^= byte
        return bytes(out)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class Verifier:
    """Checks a body against the strongest hash Graph gave. `name` is "" when it gave none: then
    nothing can be verified and `matches()` is False (the caller keeps such bytes as unverified)."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self.name, self.expected = "", ""
        self._hasher: Any = None
        for name, factory in (("quickXorHash", QuickXorHash), ("sha256Hash", hashlib.sha256),
                              ("sha1Hash", hashlib.sha1)):
            if hashes.get(name):
                self.name, self.expected, self._hasher = name, hashes[name], factory()
                break

    def update(self, chunk: bytes) -> None:
        if self._hasher is not None:
            self._hasher.update(chunk)

    def matches(self) -> bool:
        if self._hasher is None:
            return False
        if isinstance(self._hasher, QuickXorHash):
            return self._hasher.b64digest() == self.expected
        return str(self._hasher.hexdigest()).lower() == self.expected.lower()
