"""Conversion between wasmtime's C component values and plain Python values.

wasmtime-py converts every value generically and re-reads the function type on every call; a
``list<u8>`` becomes one 32-byte ``wasmtime_component_val_t`` per byte, walked in Python (~1.5 s
per MB). Host functions here instead get a :class:`Codec` built once per imported function, and
byte lists move with strided slices over the raw C array, which runs at memcpy speed.

Python shapes used by host functions:

========================  ==============================================================
WIT type                  Python value
========================  ==============================================================
bool, integers, floats    ``bool`` / ``int`` / ``float``
char, string              ``str``
``list<u8>``              ``bytes`` (a ``bytearray`` or ``memoryview`` is accepted when lowering)
``list<T>``               ``list``
record                    ``dict`` keyed by field name
tuple                     ``tuple``
variant                   ``(case, payload)``; a bare ``str`` lowers a case without payload
enum                      ``str``
option                    ``None`` or the value
result                    ``("ok", value)`` / ``("err", value)``
flags                     ``set[str]``
own / borrow resource     the host object (see :mod:`faasops.runtime.host`)
========================  ==============================================================
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, addressof, byref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from wasmtime import _ffi as ffi
from wasmtime import component as wc

if TYPE_CHECKING:
    from faasops.runtime.host import RequestState

Val = ffi.wasmtime_component_val_t
VAL_SIZE = ctypes.sizeof(Val)
# Where the payload union starts inside a val (the tag is a u8 at offset 0).
PAYLOAD_OFFSET = Val.of.offset

_U8_TAG = bytes([ffi.WASMTIME_COMPONENT_U8.value])

Lift = Callable[[Any, "RequestState", Any], Any]
Lower = Callable[[Any, Any, "RequestState", Any], None]


class HostValueError(Exception):
    """A host value does not fit the WIT type it must be lowered to (a host bug)."""


@dataclass(frozen=True)
class Codec:
    """Converters for one host function: a lifter per parameter and a lowerer for the result."""

    params: tuple[Lift, ...]
    result: Lower | None


def codec_for(func_type: wc.FuncType) -> Codec:
    """Build the converters of a component function type once; reuse them for every call."""
    params = tuple(lifter(ty) for _name, ty in func_type.params)
    result_ty = func_type.result
    return Codec(params, lowerer(result_ty) if result_ty is not None else None)


# -- reading C values (guest → host) -------------------------------------------------------------

def _read_name(vec: Any) -> str:
    size = vec.size
    if size == 0:
        return ""
    return ctypes.string_at(addressof(vec.data.contents), size).decode("utf-8")


def _lift_bytes(v: Any, state: "RequestState", ctx: Any) -> bytes:
    lst = v.of.list
    n = lst.size
    if n == 0:
        return b""
    raw = ctypes.string_at(addressof(lst.data.contents), n * VAL_SIZE)
    # Every element is a U8 val: its byte sits at PAYLOAD_OFFSET in each 32-byte slot.
    return raw[PAYLOAD_OFFSET::VAL_SIZE]


def _resource_rep(ctx: Any, resource_any: Any) -> int:
    host = POINTER(ffi.wasmtime_component_resource_host_t)()
    err = ffi.wasmtime_component_resource_any_to_host(ctx, resource_any, byref(host))
    if err:
        raise HostValueError("guest passed a resource the host did not create")
    try:
        return ffi.wasmtime_component_resource_host_rep(host)
    finally:
        ffi.wasmtime_component_resource_host_delete(host)


def lifter(ty: wc.ValType) -> Lift:
    """Return a function turning a C value of type ``ty`` into its Python shape."""
    if isinstance(ty, wc.Bool):
        return lambda v, state, ctx: bool(v.of.boolean)
    for cls, field in _NUMERIC_FIELDS.items():
        if isinstance(ty, cls):
            return lambda v, state, ctx, _f=field: getattr(v.of, _f)
    if isinstance(ty, wc.Char):
        return lambda v, state, ctx: chr(v.of.character)
    if isinstance(ty, wc.String):
        return lambda v, state, ctx: _read_name(v.of.string)
    if isinstance(ty, wc.ListType):
        element = ty.element
        if isinstance(element, wc.U8):
            return _lift_bytes
        lift_el = lifter(element)

        def lift_list(v: Any, state: "RequestState", ctx: Any) -> list[Any]:
            lst = v.of.list
            return [lift_el(lst.data[i], state, ctx) for i in range(lst.size)]
        return lift_list
    if isinstance(ty, wc.RecordType):
        fields = [(name, lifter(fty)) for name, fty in ty.fields]

        def lift_record(v: Any, state: "RequestState", ctx: Any) -> dict[str, Any]:
            data = v.of.record.data
            return {name: lift(data[i].val, state, ctx) for i, (name, lift) in enumerate(fields)}
        return lift_record
    if isinstance(ty, wc.TupleType):
        elements = [lifter(e) for e in ty.elements]

        def lift_tuple(v: Any, state: "RequestState", ctx: Any) -> tuple[Any, ...]:
            data = v.of.tuple.data
            return tuple(lift(data[i], state, ctx) for i, lift in enumerate(elements))
        return lift_tuple
    if isinstance(ty, wc.VariantType):
        cases = {name: (lifter(cty) if cty is not None else None) for name, cty in ty.cases}

        def lift_variant(v: Any, state: "RequestState", ctx: Any) -> tuple[str, Any]:
            tag = _read_name(v.of.variant.discriminant)
            lift = cases[tag]
            return (tag, lift(v.of.variant.val.contents, state, ctx) if lift else None)
        return lift_variant
    if isinstance(ty, wc.EnumType):
        return lambda v, state, ctx: _read_name(v.of.enumeration)
    if isinstance(ty, wc.OptionType):
        lift_some = lifter(ty.payload)

        def lift_option(v: Any, state: "RequestState", ctx: Any) -> Any:
            ptr = v.of.option
            return lift_some(ptr.contents, state, ctx) if ptr else None
        return lift_option
    if isinstance(ty, wc.ResultType):
        ok_ty, err_ty = ty.ok, ty.err
        lift_ok = lifter(ok_ty) if ok_ty is not None else None
        lift_err = lifter(err_ty) if err_ty is not None else None

        def lift_result(v: Any, state: "RequestState", ctx: Any) -> tuple[str, Any]:
            res = v.of.result
            tag, lift = ("ok", lift_ok) if res.is_ok else ("err", lift_err)
            return (tag, lift(res.val.contents, state, ctx) if lift else None)
        return lift_result
    if isinstance(ty, wc.FlagsType):
        def lift_flags(v: Any, state: "RequestState", ctx: Any) -> set[str]:
            flags = v.of.flags
            return {_read_name(flags.data[i]) for i in range(flags.size)}
        return lift_flags
    if isinstance(ty, (wc.OwnType, wc.BorrowType)):
        return lambda v, state, ctx: state.resource(_resource_rep(ctx, v.of.resource))
    raise HostValueError(f"unsupported parameter type {type(ty).__name__}")


# -- writing C values (host → guest) -------------------------------------------------------------

def _name(s: str) -> Any:
    return ffi.bytes_to_capi(s.encode("utf-8"))


def _lower_bytes(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
    n = len(value)
    lst = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(lst, n)
    if n:
        # Lay out n U8 vals in one buffer with two strided writes, then copy it over in one go.
        buf = bytearray(n * VAL_SIZE)
        buf[0::VAL_SIZE] = _U8_TAG * n
        buf[PAYLOAD_OFFSET::VAL_SIZE] = value
        ctypes.memmove(lst.data, (ctypes.c_char * len(buf)).from_buffer(buf), len(buf))
    dst.kind = ffi.WASMTIME_COMPONENT_LIST
    dst.of.list = lst


def _boxed(lower: Lower, value: Any, state: "RequestState", ctx: Any) -> Any:
    tmp = Val()
    lower(value, tmp, state, ctx)
    return ffi.wasmtime_component_val_new(byref(tmp))


def _lower_resource(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
    rep = state.add_resource(value)
    host = ffi.wasmtime_component_resource_host_new(True, rep, value.type_id)
    out = POINTER(ffi.wasmtime_component_resource_any_t)()
    try:
        err = ffi.wasmtime_component_resource_host_to_any(ctx, host, byref(out))
        if err:
            raise HostValueError("cannot hand a resource to the guest")
    finally:
        ffi.wasmtime_component_resource_host_delete(host)
    dst.kind = ffi.WASMTIME_COMPONENT_RESOURCE
    dst.of.resource = out


def lowerer(ty: wc.ValType) -> Lower:
    """Return a function writing a Python value of type ``ty`` into a C value."""
    if isinstance(ty, wc.Bool):
        def lower_bool(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            dst.kind = ffi.WASMTIME_COMPONENT_BOOL
            dst.of.boolean = bool(value)
        return lower_bool
    for cls, field in _NUMERIC_FIELDS.items():
        if isinstance(ty, cls):
            kind = _NUMERIC_KINDS[cls]

            def lower_number(value: Any, dst: Any, state: "RequestState", ctx: Any,
                             _f: str = field, _k: Any = kind) -> None:
                dst.kind = _k
                setattr(dst.of, _f, value)
            return lower_number
    if isinstance(ty, wc.Char):
        def lower_char(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            dst.kind = ffi.WASMTIME_COMPONENT_CHAR
            dst.of.character = ord(value)
        return lower_char
    if isinstance(ty, wc.String):
        def lower_string(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            dst.kind = ffi.WASMTIME_COMPONENT_STRING
            dst.of.string = _name(value)
        return lower_string
    if isinstance(ty, wc.ListType):
        element = ty.element
        if isinstance(element, wc.U8):
            return _lower_bytes
        lower_el = lowerer(element)

        def lower_list(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            items = list(value)
            lst = ffi.wasmtime_component_vallist_t()
            ffi.wasmtime_component_vallist_new_uninit(lst, len(items))
            for i, item in enumerate(items):
                lower_el(item, lst.data[i], state, ctx)
            dst.kind = ffi.WASMTIME_COMPONENT_LIST
            dst.of.list = lst
        return lower_list
    if isinstance(ty, wc.RecordType):
        fields = [(name, lowerer(fty)) for name, fty in ty.fields]

        def lower_record(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            rec = ffi.wasmtime_component_valrecord_t()
            ffi.wasmtime_component_valrecord_new_uninit(rec, len(fields))
            for i, (name, lower) in enumerate(fields):
                entry = rec.data[i]
                entry.name = _name(name)
                lower(value[name], entry.val, state, ctx)
            dst.kind = ffi.WASMTIME_COMPONENT_RECORD
            dst.of.record = rec
        return lower_record
    if isinstance(ty, wc.TupleType):
        elements = [lowerer(e) for e in ty.elements]

        def lower_tuple(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            tup = ffi.wasmtime_component_valtuple_t()
            ffi.wasmtime_component_valtuple_new_uninit(tup, len(elements))
            for i, (lower, item) in enumerate(zip(elements, value, strict=True)):
                lower(item, tup.data[i], state, ctx)
            dst.kind = ffi.WASMTIME_COMPONENT_TUPLE
            dst.of.tuple = tup
        return lower_tuple
    if isinstance(ty, wc.VariantType):
        cases = {name: (lowerer(cty) if cty is not None else None) for name, cty in ty.cases}

        def lower_variant(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            tag, payload = (value, None) if isinstance(value, str) else value
            if tag not in cases:
                raise HostValueError(f"variant has no case {tag!r} (cases: {', '.join(cases)})")
            lower = cases[tag]
            dst.kind = ffi.WASMTIME_COMPONENT_VARIANT
            dst.of.variant.discriminant = _name(tag)
            dst.of.variant.val = _boxed(lower, payload, state, ctx) if lower else None
        return lower_variant
    if isinstance(ty, wc.EnumType):
        def lower_enum(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            dst.kind = ffi.WASMTIME_COMPONENT_ENUM
            dst.of.enumeration = _name(value)
        return lower_enum
    if isinstance(ty, wc.OptionType):
        lower_some = lowerer(ty.payload)

        def lower_option(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            dst.kind = ffi.WASMTIME_COMPONENT_OPTION
            dst.of.option = None if value is None else _boxed(lower_some, value, state, ctx)
        return lower_option
    if isinstance(ty, wc.ResultType):
        ok_ty, err_ty = ty.ok, ty.err
        branches = {
            "ok": lowerer(ok_ty) if ok_ty is not None else None,
            "err": lowerer(err_ty) if err_ty is not None else None,
        }

        def lower_result(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            tag, payload = value
            lower = branches[tag]
            dst.kind = ffi.WASMTIME_COMPONENT_RESULT
            dst.of.result.is_ok = tag == "ok"
            dst.of.result.val = _boxed(lower, payload, state, ctx) if lower else None
        return lower_result
    if isinstance(ty, wc.FlagsType):
        def lower_flags(value: Any, dst: Any, state: "RequestState", ctx: Any) -> None:
            names = sorted(value)
            flags = ffi.wasmtime_component_valflags_t()
            ffi.wasmtime_component_valflags_new_uninit(flags, len(names))
            for i, name in enumerate(names):
                flags.data[i] = _name(name)
            dst.kind = ffi.WASMTIME_COMPONENT_FLAGS
            dst.of.flags = flags
        return lower_flags
    if isinstance(ty, wc.OwnType):
        return _lower_resource
    raise HostValueError(f"unsupported result type {type(ty).__name__}")


_NUMERIC_FIELDS: dict[type, str] = {
    wc.S8: "s8", wc.U8: "u8", wc.S16: "s16", wc.U16: "u16", wc.S32: "s32", wc.U32: "u32",
    wc.S64: "s64", wc.U64: "u64", wc.F32: "f32", wc.F64: "f64",
}
_NUMERIC_KINDS: dict[type, Any] = {
    wc.S8: ffi.WASMTIME_COMPONENT_S8, wc.U8: ffi.WASMTIME_COMPONENT_U8,
    wc.S16: ffi.WASMTIME_COMPONENT_S16, wc.U16: ffi.WASMTIME_COMPONENT_U16,
    wc.S32: ffi.WASMTIME_COMPONENT_S32, wc.U32: ffi.WASMTIME_COMPONENT_U32,
    wc.S64: ffi.WASMTIME_COMPONENT_S64, wc.U64: ffi.WASMTIME_COMPONENT_U64,
    wc.F32: ffi.WASMTIME_COMPONENT_F32, wc.F64: ffi.WASMTIME_COMPONENT_F64,
}
