"""Zero-copy reads of pinned host tables from a CUDA device, over unified addressing.

A host table is pinned in place with ``cudaHostRegister`` (no copy; ``Tensor.pin_memory``
would copy and round the allocation up to a power of two) and exposed to torch as a CUDA
tensor aliasing the same pointer, so ``index_select`` on the device reads exactly the
rows it needs over PCIe/NVLink: no CPU gather and no staging copy.

No GPU was available where this was written: the code follows DGL GraphBolt's use of
the same calls, and its tests skip without CUDA.
"""
from __future__ import annotations

import threading
import weakref
import torch
from torch import Tensor


def cuda_available() -> bool:
    return torch.cuda.is_available()


#: cudaHostRegister refuses memory already registered (two stores over one tensor, say):
#: registrations are counted per pointer, and the last one released unpins.
_PINNED: dict[int, int] = {}
_LOCK = threading.Lock()
_HOST_REGISTER_READ_ONLY = 0x08  # cudaHostRegisterReadOnly: for read-only mappings


def _unregister(ptr: int) -> None:
    with _LOCK:
        _PINNED[ptr] -= 1
        if _PINNED[ptr] == 0:
            del _PINNED[ptr]
            torch.cuda.cudart().cudaHostUnregister(ptr)


class PinnedRegistration:
    """Pins ``nbytes`` at ``ptr`` in place; unpins when this object is freed (and no other
    registration of the same pointer is alive).

    ``owner`` (the tensor or array that owns the memory) is kept alive meanwhile;
    ``read_only`` memory (a read-only file mapping) is registered as such.
    """

    def __init__(self, owner: object, ptr: int, nbytes: int, read_only: bool = False) -> None:
        self.owner = owner
        self.ptr = ptr
        self.nbytes = nbytes
        if nbytes == 0:
            return
        with _LOCK:
            if ptr not in _PINNED:
                flags = _HOST_REGISTER_READ_ONLY if read_only else 0
                err = torch.cuda.cudart().cudaHostRegister(ptr, nbytes, flags)
                if int(err) != 0:
                    raise RuntimeError(
                        f"cudaHostRegister of {nbytes} bytes failed with CUDA error {int(err)}")
            _PINNED[ptr] = _PINNED.get(ptr, 0) + 1
        self._finalizer = weakref.finalize(self, _unregister, ptr)

    def release(self) -> None:
        """Unpins now (idempotent)."""
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()


def register_array(raw) -> PinnedRegistration:
    """Pins a numpy array's memory (a :class:`~graphbatch.features.buffers.BufferPool` hook)."""
    return PinnedRegistration(raw, raw.ctypes.data, raw.nbytes)


class _CudaArrayInterface:
    def __init__(self, ptr: int, shape: tuple[int, ...]) -> None:
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": "|u1", "data": (ptr, False), "version": 2, "strides": None,
        }


def device_alias(table: Tensor, device: torch.device) -> Tensor:
    """A CUDA tensor reading the registered host ``table`` in place (same shape, dtype).

    The bytes are exposed as uint8 (``__cuda_array_interface__`` knows no bfloat16) and
    viewed back as ``table.dtype`` on the device.
    """
    nbytes = table.numel() * table.element_size()
    raw = torch.as_tensor(_CudaArrayInterface(table.data_ptr(), (nbytes,)), device=device)
    return raw.view(table.dtype).view(table.shape)


def gather_on_device(alias: Tensor, index: Tensor, device: torch.device) -> Tensor:
    """``alias[index]`` computed by the GPU on the current stream, reading host rows over
    unified addressing.

    The ids are sorted first so consecutive threads read neighbouring rows (DGL measured
    19 vs 4.4 GB/s), and the rows are put back in request order on the device.
    """
    idx = index.to(device, non_blocking=True)
    sorted_idx, order = torch.sort(idx)
    rows = alias.index_select(0, sorted_idx)
    out = torch.empty_like(rows)
    out[order] = rows
    return out
