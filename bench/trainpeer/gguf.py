"""A small self-contained GGUF reader (v2/v3): metadata and F32/F16/BF16/Q8_0 tensors as numpy.

Debian has no python3-gguf; this reads what trainpeer.py needs and refuses the rest by name.
A tensor with GGUF dims {ne0, ne1} comes back as an array of shape (ne1, ne0): row-major,
so a matrix W of a layer y = W x has shape (out, in).
"""

import struct

import numpy as np

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
F32, F16, Q8_0, BF16 = 0, 1, 8, 30
_TYPE_NAMES = {F32: "F32", F16: "F16", Q8_0: "Q8_0", BF16: "BF16"}


class GGUFError(Exception):
    pass


class GGUF:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        if self.buf[:4] != b"GGUF":
            raise GGUFError(f"{path}: not a GGUF file (magic {self.buf[:4]!r})")
        self.pos = 4
        version = self._scalar(4)
        if version not in (2, 3):
            raise GGUFError(f"{path}: GGUF version {version}, want 2 or 3")
        n_tensors = self._scalar(10)
        n_kv = self._scalar(10)
        self.kv = {}
        for _ in range(n_kv):
            key = self._string()
            self.kv[key] = self._value(self._scalar(4))
        self.tensors = {}
        for _ in range(n_tensors):
            name = self._string()
            nd = self._scalar(4)
            dims = [self._scalar(10) for _ in range(nd)]
            typ = self._scalar(4)
            off = self._scalar(10)
            self.tensors[name] = (dims, typ, off)
        align = int(self.kv.get("general.alignment", 32))
        self.data = (self.pos + align - 1) // align * align

    def _scalar(self, t):
        fmt = _SCALARS[t]
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def _string(self):
        n = self._scalar(10)
        s = self.buf[self.pos : self.pos + n].decode("utf-8", errors="replace")
        self.pos += n
        return s

    def _value(self, t):
        if t == 8:
            return self._string()
        if t == 9:
            et = self._scalar(4)
            n = self._scalar(10)
            if et in _SCALARS and et != 7:
                fmt = _SCALARS[et]
                size = struct.calcsize(fmt)
                arr = np.frombuffer(self.buf, dtype=np.dtype(fmt), count=n, offset=self.pos)
                self.pos += n * size
                return arr
            return [self._value(et) for _ in range(n)]
        if t not in _SCALARS:
            raise GGUFError(f"{self.path}: unknown metadata value type {t}")
        return self._scalar(t)

    def get(self, key, default=None):
        return self.kv.get(key, default)

    def has(self, name):
        return name in self.tensors

    def tensor(self, name):
        """The tensor as float32, shape reversed from GGUF dims (row-major)."""
        if name not in self.tensors:
            raise GGUFError(f"{self.path}: no tensor {name!r}")
        dims, typ, off = self.tensors[name]
        n = int(np.prod(dims))
        start = self.data + off
        if typ == F32:
            v = np.frombuffer(self.buf, dtype="<f4", count=n, offset=start).astype(np.float32)
        elif typ == F16:
            v = np.frombuffer(self.buf, dtype="<f2", count=n, offset=start).astype(np.float32)
        elif typ == BF16:
            u = np.frombuffer(self.buf, dtype="<u2", count=n, offset=start).astype(np.uint32) << 16
            v = u.view(np.float32)
        elif typ == Q8_0:
            blocks = n // 32
            raw = np.frombuffer(self.buf, dtype=np.uint8, count=blocks * 34, offset=start).reshape(blocks, 34)
            d = raw[:, :2].copy().view("<f2").astype(np.float32)
            q = raw[:, 2:].copy().view(np.int8).astype(np.float32)
            v = (q * d).reshape(-1)
        else:
            raise GGUFError(f"{self.path}: tensor {name} has ggml type {typ}; this reader takes "
                            f"{', '.join(_TYPE_NAMES.values())} (convert the model with freqkv convert)")
        return v.reshape(list(reversed(dims)) if len(dims) > 1 else [dims[0]])
