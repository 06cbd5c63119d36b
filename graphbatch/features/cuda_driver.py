"""The few CUDA driver calls that torch does not expose, through ctypes on ``libcuda``.

Host memory is pinned with the driver's ``cuMemHostRegister`` rather than the runtime's
``cudaHostRegister`` (which ``torch.cuda.cudart()`` offers): a failed runtime call
leaves a pending error in the calling thread, which torch's check after its next kernel
launch there reports as that kernel's failure. The driver keeps no such state. The
driver also answers what the runtime binding cannot: a registered range's device
address (``cuMemHostGetDevicePointer``) and the device attributes saying whether the
host address can be used on the device as it is.

Every call runs in the device's primary context (retained once, for the process),
pushed on the calling thread for the call (a prefetch thread may not have made any CUDA
call yet). Tests replace
:func:`driver` with a fake; :class:`Driver` itself is a thin binding.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint, c_uint64, c_void_p
from typing import Iterator

import torch

SUCCESS = 0
#: CUresult of registering memory that is already registered (pinned by torch, say).
ALREADY_REGISTERED = 712
#: cuMemHostRegister flags: pinned for every context, and mapped into the device's
#: address space.
REGISTER_PORTABLE = 0x01
REGISTER_DEVICEMAP = 0x02
#: CUdevice_attribute values.
ATTR_UNIFIED_ADDRESSING = 41
ATTR_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM = 91
ATTR_HOST_REGISTER_SUPPORTED = 99


class Driver:
    """``libcuda`` calls, each returning the ``CUresult`` (0: success) and its outputs."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._contexts: dict[int, c_void_p] = {}
        self._lock = threading.Lock()
        signatures = {
            "cuDeviceGet": [POINTER(c_int), c_int],
            "cuDeviceGetAttribute": [POINTER(c_int), c_int, c_int],
            "cuDevicePrimaryCtxRetain": [POINTER(c_void_p), c_int],
            "cuCtxPushCurrent_v2": [c_void_p],
            "cuCtxPopCurrent_v2": [POINTER(c_void_p)],
            "cuMemHostRegister_v2": [c_void_p, c_size_t, c_uint],
            "cuMemHostUnregister": [c_void_p],
            "cuMemHostGetDevicePointer_v2": [POINTER(c_uint64), c_void_p, c_uint],
            "cuGetErrorString": [c_int, POINTER(c_char_p)],
        }
        for name, argtypes in signatures.items():
            fn = getattr(lib, name)
            fn.argtypes = argtypes
            fn.restype = c_int

    @contextlib.contextmanager
    def context(self, ordinal: int) -> Iterator[None]:
        """Device ``ordinal``'s primary context, current on this thread meanwhile."""
        self._check(self._lib.cuCtxPushCurrent_v2(self._primary(ordinal)), "cuCtxPushCurrent")
        try:
            yield
        finally:
            self._lib.cuCtxPopCurrent_v2(byref(c_void_p()))

    def _primary(self, ordinal: int) -> c_void_p:
        """Device ``ordinal``'s primary context, retained once for the process: released
        by its last holder, a primary context is reset, and with it the memory
        registered in it (torch may not hold it yet: a store pins batch buffers before
        any kernel runs on the device)."""
        with self._lock:
            if ordinal not in self._contexts:
                device, ctx = c_int(), c_void_p()
                self._check(self._lib.cuDeviceGet(byref(device), ordinal),
                            f"cuDeviceGet({ordinal})")
                self._check(self._lib.cuDevicePrimaryCtxRetain(byref(ctx), device),
                            "cuDevicePrimaryCtxRetain")
                self._contexts[ordinal] = ctx
            return self._contexts[ordinal]

    def attribute(self, attribute: int, ordinal: int) -> int:
        value, device = c_int(), c_int()
        self._check(self._lib.cuDeviceGet(byref(device), ordinal), f"cuDeviceGet({ordinal})")
        self._check(self._lib.cuDeviceGetAttribute(byref(value), attribute, device),
                    f"cuDeviceGetAttribute({attribute})")
        return value.value

    def host_register(self, ptr: int, nbytes: int, flags: int) -> int:
        return self._lib.cuMemHostRegister_v2(c_void_p(ptr), nbytes, flags)

    def host_unregister(self, ptr: int) -> int:
        return self._lib.cuMemHostUnregister(c_void_p(ptr))

    def device_pointer(self, ptr: int) -> tuple[int, int]:
        """The device address of registered host address ``ptr``, with the result."""
        out = c_uint64()
        err = self._lib.cuMemHostGetDevicePointer_v2(byref(out), c_void_p(ptr), 0)
        return err, out.value

    def error_string(self, code: int) -> str:
        text = c_char_p()
        if self._lib.cuGetErrorString(code, byref(text)) != SUCCESS or text.value is None:
            return f"unknown CUDA error {code}"
        return f"{text.value.decode()} ({code})"

    def _check(self, code: int, call: str) -> None:
        if code != SUCCESS:
            raise RuntimeError(f"{call} failed: {self.error_string(code)}")


@functools.lru_cache(maxsize=None)
def driver() -> Driver:
    """The process's driver binding (CUDA initialised first, as torch does lazily)."""
    torch.cuda.init()
    return Driver(ctypes.CDLL("libcuda.so.1"))
