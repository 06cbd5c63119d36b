"""Fakes of CUDA for checking the device paths on the CPU.

- :class:`FakeDriver` answers the driver calls of ``graphbatch.features.cuda_driver``
  as CUDA does: registrations are refused where they overlap registered memory, must
  come from inside a context, and unregistering needs a registered start.
- :class:`FakeGPU` stands in for ``torch.cuda``'s streams and events, and for the device
  work of ``graphbatch.features.cuda`` (gathers, scatters, copies). Work queued on a
  stream runs only when an event after it is waited for (or :meth:`FakeGPU.finish`), as
  a GPU that is far behind would: so code that reads or reuses memory before the work
  touching it has run sees the wrong values, as it would on a GPU. Queued reads of
  pinned memory check that it is still pinned when they run.

Each stands in, in the namespace of the modules under test only, through
:func:`torch_with_cuda`.
"""
from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any, Callable, Iterator, Optional

import torch

from graphbatch.features import cuda as cuda_module

PAGE = cuda_module.PAGE


class Overlay:
    """``base``'s attributes, except the ones given: a stand-in for a module in the
    namespace of the module under test."""

    def __init__(self, base: Any, **overrides: Any) -> None:
        self._base = base
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def torch_with_cuda(**cuda_overrides: Any) -> Overlay:
    """``torch``, with the given ``torch.cuda`` attributes replaced."""
    return Overlay(torch, cuda=Overlay(torch.cuda, **cuda_overrides))


# --------------------------------------------------------------------------- driver


class FakeDriver:
    """The driver calls of :class:`graphbatch.features.cuda_driver.Driver`. Anything
    CUDA would refuse is kept in ``errors`` (the code under test may not look at a
    return value)."""

    ALREADY_REGISTERED = 712
    NOT_REGISTERED = 713
    OUT_OF_MEMORY = 2

    def __init__(self) -> None:
        self.pinned: dict[int, tuple[int, int, int]] = {}  # start -> (nbytes, flags, ordinal)
        self.registers: Counter = Counter()
        self.unregisters: Counter = Counter()
        self.errors: list[str] = []
        self.refuse: set[int] = set()  # addresses whose registration fails
        self.foreign: list[tuple[int, int]] = []  # ranges pinned by someone else
        self.host_pointer_ok = True  # CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM
        self.pointer_offset = 0  # device address - host address, where it differs
        self.pointer_error = 0
        self.fail_unregister = False
        self.contexts: list[int] = []  # ordinals of the contexts entered
        self._local = threading.local()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def context(self, ordinal: int) -> Iterator[None]:
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(ordinal)
        self.contexts.append(ordinal)
        try:
            yield
        finally:
            stack.pop()

    def _current(self, call: str) -> Optional[int]:
        stack = getattr(self._local, "stack", [])
        if not stack:
            self.errors.append(f"{call} with no current context")
            return None
        return stack[-1]

    def attribute(self, attribute: int, ordinal: int) -> int:
        self._current("cuDeviceGetAttribute")
        if attribute == 91:
            return int(self.host_pointer_ok)
        return 1

    def host_register(self, ptr: int, nbytes: int, flags: int) -> int:
        ordinal = self._current("cuMemHostRegister")
        if ptr % PAGE or nbytes % PAGE:
            self.errors.append(f"register {ptr:#x} + {nbytes}: not whole pages")
        if any(ptr <= a < ptr + nbytes for a in self.refuse):
            return self.OUT_OF_MEMORY
        with self._lock:
            taken = [(s, s + n) for s, (n, _, _) in self.pinned.items()] + self.foreign
            if any(s < ptr + nbytes and ptr < e for s, e in taken):
                return self.ALREADY_REGISTERED
            self.pinned[ptr] = (nbytes, flags, ordinal)
            self.registers[ptr] += 1
        return 0

    def host_unregister(self, ptr: int) -> int:
        self._current("cuMemHostUnregister")
        if self.fail_unregister:
            return 999
        with self._lock:
            if ptr not in self.pinned:
                self.errors.append(f"unregister {ptr:#x}: not registered")
                return self.NOT_REGISTERED
            del self.pinned[ptr]
            self.unregisters[ptr] += 1
        return 0

    def device_pointer(self, ptr: int) -> tuple[int, int]:
        self._current("cuMemHostGetDevicePointer")
        if self.pointer_error:
            return self.pointer_error, 0
        return 0, ptr + self.pointer_offset

    def error_string(self, code: int) -> str:
        return f"fake CUDA error {code}"

    def pins(self, ptr: int, nbytes: int) -> bool:
        """Whether registered ranges cover ``[ptr, ptr + nbytes)``."""
        cursor, end = ptr, ptr + nbytes
        for start, (n, _, _) in sorted(self.pinned.items()):
            if start <= cursor < start + n:
                cursor = start + n
        return cursor >= end

    def pins_tensor(self, t: torch.Tensor) -> bool:
        return self.pins(t.data_ptr(), t.numel() * t.element_size())


# --------------------------------------------------------------------------- GPU


class FakeStream:
    """A CUDA stream whose queued work runs only when waited for."""

    def __init__(self, gpu: "FakeGPU", name: str) -> None:
        self.gpu = gpu
        self.name = name
        self.ops: list[tuple[str, Any]] = []

    def wait_event(self, event: "FakeEvent") -> None:
        with self.gpu.lock:
            self.ops.append(("wait", event))

    def queue(self, fn: Callable[[], None]) -> None:
        with self.gpu.lock:
            self.ops.append(("op", fn))

    def run(self, until: Optional["FakeEvent"] = None) -> None:
        """Runs the queued work, up to ``until`` if given."""
        while True:
            with self.gpu.lock:
                if not self.ops:
                    return
                kind, item = self.ops.pop(0)
            if kind == "op":
                item()
            elif kind == "wait":
                item.synchronize()
            else:
                item.done = True
                if item is until:
                    return

    def __repr__(self) -> str:
        return f"<stream {self.name}>"


class FakeEvent:
    def __init__(self, gpu: "FakeGPU") -> None:
        self.gpu = gpu
        self.stream: Optional[FakeStream] = None
        self.done = False

    def record(self, stream: Optional[FakeStream] = None) -> None:
        self.stream = stream if stream is not None else self.gpu.current_stream()
        with self.gpu.lock:
            self.stream.ops.append(("event", self))
        self.gpu.recorded.append(self)

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        if not self.done and self.stream is not None:
            self.gpu.synchronized.append(self)
            self.stream.run(until=self)


class FakeGPU:
    """``torch.cuda``'s streams, events and devices, and the device work of
    ``graphbatch.features.cuda``, on the CPU (see the module docstring)."""

    def __init__(self, driver: FakeDriver) -> None:
        self.driver = driver
        self.lock = threading.RLock()
        self.default = FakeStream(self, "default")
        self.streams = [self.default]
        self.recorded: list[FakeEvent] = []
        self.synchronized: list[FakeEvent] = []
        self.aliases: list[tuple[int, torch.device]] = []  # (address, device) of each alias made
        self.indexes = 0  # DeviceIndex objects made
        self._local = threading.local()

    # torch.cuda
    def Stream(self, device: Optional[torch.device] = None) -> FakeStream:  # noqa: N802
        stream = FakeStream(self, f"side {len(self.streams)}")
        self.streams.append(stream)
        return stream

    def Event(self, **_: Any) -> FakeEvent:  # noqa: N802
        return FakeEvent(self)

    def current_stream(self, device: Optional[torch.device] = None) -> FakeStream:
        return getattr(self._local, "stream", self.default)

    @contextlib.contextmanager
    def stream(self, stream: FakeStream) -> Iterator[None]:
        previous = self.current_stream()
        self._local.stream = stream
        try:
            yield
        finally:
            self._local.stream = previous

    @contextlib.contextmanager
    def device(self, device: Any) -> Iterator[None]:
        yield

    def current_device(self) -> int:
        return 0

    def finish(self) -> None:
        """Runs every stream's queued work (``torch.cuda.synchronize()``)."""
        for stream in list(self.streams):
            stream.run()

    # graphbatch.features.cuda
    def _read(self, t: torch.Tensor, what: str) -> None:
        if not self.driver.pins_tensor(t):
            self.driver.errors.append(f"{what} read memory that is not pinned any more")

    def copy_to(self, tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
        # The copy holds no reference to the tensor, as a DMA does not: only the memory.
        source = _real_alias_at(tensor.data_ptr(), torch.device("cpu"), tensor)
        out = torch.full_like(tensor, float("nan") if tensor.is_floating_point() else -1)
        if not self.driver.pins_tensor(tensor):
            # From pageable memory CUDA stages the bytes before returning: the source
            # has been read when the call returns.
            out.copy_(source)
            return out

        def run() -> None:
            self._read(source, "a copy")
            out.copy_(source)
        self.current_stream().queue(run)
        return out

    def gather_on_device(self, alias: torch.Tensor, index: Any) -> torch.Tensor:
        out = torch.empty((index.sorted.numel(), *alias.shape[1:]), dtype=alias.dtype)
        sorted_ids, inverse = index.sorted, index.inverse

        def run() -> None:
            self._read(alias, "a gather")
            out.copy_(alias.index_select(0, sorted_ids).index_select(0, inverse))
        self.current_stream().queue(run)
        return out

    def scatter_on_device(self, alias: torch.Tensor, index: torch.Tensor,
                          values: torch.Tensor) -> None:
        values = values.as_subclass(torch.Tensor).clone()  # device memory, torch's own

        def run() -> None:
            self._read(alias, "a scatter")
            alias.index_copy_(0, index, values)
        self.current_stream().queue(run)

    def alias_at(self, address: int, device: torch.device, table: torch.Tensor) -> torch.Tensor:
        self.aliases.append((address, device))
        host = address if self.driver.host_pointer_ok else address - self.driver.pointer_offset
        return _real_alias_at(host, torch.device("cpu"), table)

    def device_index(self) -> type:
        gpu = self

        class CPUDeviceIndex(cuda_module.DeviceIndex):
            def __init__(self, index: torch.Tensor, device: torch.device) -> None:
                super().__init__(index, torch.device("cpu"))
                self.device = device
                gpu.indexes += 1
        return CPUDeviceIndex


_real_alias_at = cuda_module.alias_at


def cuda_tensor(t: torch.Tensor) -> torch.Tensor:
    """``t`` reporting ``is_cuda`` (values written from the device)."""
    return torch.Tensor._make_subclass(_CudaLooking, t)


class _CudaLooking(torch.Tensor):
    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True
