"""Low-level helpers for the numba kernels that numba itself lacks."""
from __future__ import annotations

from llvmlite import binding, ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: Bytes of a cache line.
LINE = 64

# LLVM names the intrinsic by pointer type; LLVM 15 made pointers opaque.
_PREFETCH = "llvm.prefetch.p0" if binding.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, array, index):
    """Hints the CPU to load ``array[index]`` into cache (a read, kept in all levels).

    Kernels that visit scattered segments (a sampled node's edges) prefetch a few
    iterations ahead so that the cache misses overlap instead of queueing one by one.
    """
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, array_type, ary, [args[1]],
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always", cache=True)
def prefetch_range(array, start, stop):
    """Prefetches the cache lines of ``array[start:stop]``."""
    for p in range(start, stop, max(1, LINE // array.itemsize)):
        prefetch(array, p)


def _uint64_intrinsic(llvm_name: str, doc: str, extra_false_flag: bool = False):
    """A numba intrinsic ``f(uint64) -> uint64`` calling the LLVM intrinsic ``llvm_name``."""

    @intrinsic
    def fn(typingctx, value):
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):
            i64 = ir.IntType(64)
            flags = [ir.IntType(1)] if extra_false_flag else []
            fnty = ir.FunctionType(i64, [i64] + flags)
            callee = cgutils.get_or_insert_function(builder.module, fnty, llvm_name)
            extra = [ir.Constant(ir.IntType(1), 0)] if extra_false_flag else []
            return builder.call(callee, [args[0]] + extra)

        return sig, codegen

    fn.__doc__ = doc
    return fn


popcount = _uint64_intrinsic(
    "llvm.ctpop.i64", "The number of set bits of a uint64 (one POPCNT instruction).")
trailing_zeros = _uint64_intrinsic(
    "llvm.cttz.i64", "The index of the lowest set bit of a uint64 (64 for 0; one TZCNT).",
    extra_false_flag=True)
