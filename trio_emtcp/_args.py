"""Argument checks and their messages, in one place.

Every public parameter is checked here before it reaches the kernel, a
``struct`` or the resolver (SPEC §4): a :class:`TypeError` for a wrong type,
a :class:`ValueError` for a wrong value, each message of the form
``"NAME: what was expected, got WHAT"``.  The callers name the argument;
this module words the rule, so that a new parameter gets the same checks
and the same wording by construction.

Nothing here is async: the ``async`` callers turn a refusal into a
checkpoint and a raise (SPEC §4: every async call is a checkpoint, also on
error).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = [
    "INT_MAX",
    "MAX_PORT",
    "bool_arg",
    "buffer_error",
    "bytes_copy",
    "bytes_view",
    "choice",
    "finite_seconds",
    "flag_bits_arg",
    "flag_names_arg",
    "int_arg",
    "is_int",
    "multi_dimensional",
    "nbytes",
    "no_nul",
    "number_arg",
    "optional_bytes_view",
    "port_arg",
    "read_buffer_error",
    "service_arg",
    "type_name",
    "writable_view",
    "write_buffer_error",
]

T = TypeVar("T")

MAX_PORT = 0xFFFF
#: The largest C ``int``: the bound of sizes, backlogs, counts, descriptors
#: and flags that go to the kernel as one (SPEC §13).
INT_MAX = 2**31 - 1


def type_name(value: object) -> str:
    """The name a message gives a value's type: ``int``, ``NoneType``..."""
    return type(value).__name__


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer argument: an ``int``, never a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def int_arg(
    value: object,
    name: str,
    *,
    minimum: int = 0,
    maximum: int | None = INT_MAX,
    expected: str = "an int",
    subject: str = "",
    unit: str = "",
) -> int:
    """An integer argument in ``minimum..maximum``.

    The default maximum is a C ``int``'s (SPEC §13): what the kernel takes
    for a size, a backlog, a count or a descriptor, so that nothing larger
    reaches it (or ``struct``) to be wrapped or to overflow.

    Args:
      value: what the caller passed.
      name: the argument's name, for the messages.
      minimum: the smallest value accepted.
      maximum: the largest, or ``None`` for no bound (a value that only
        caps something, such as ``stream.read_at_least``'s ``minimum``).
      expected: how the type message words what is accepted (``"an int or
        None"`` where ``None`` was handled before).
      subject: what the value is for, where ``name`` alone does not say
        (``set_option``'s ``value``: ``"send_buffer_size"``); the messages
        read ``"value: send_buffer_size must be in ..."``.
      unit: the unit of the range in the message (``"bytes"``).

    Returns:
      ``value`` as a plain ``int`` (an ``IntEnum`` member becomes its value).

    Raises:
      TypeError: not an ``int``, or a ``bool``.
      ValueError: outside ``minimum..maximum`` (the message gives the range).
    """
    if not is_int(value):
        verb = f"{subject} expects" if subject else "expected"
        raise TypeError(f"{name}: {verb} {expected}, got {type_name(value)}")
    assert isinstance(value, int)
    if maximum is None:
        if value >= minimum:
            return int(value)
        bound = f">= {minimum}"
    elif minimum <= value <= maximum:
        return int(value)
    else:
        bound = f"in {minimum}..{maximum}"
    what = f"{subject} must be" if subject else "must be"
    raise ValueError(f"{name}: {what} {bound}{' ' + unit if unit else ''}, got {value}")


def no_nul(value: str, name: str) -> str:
    """A text that becomes a C string: without NUL, where C would cut it.

    Raises:
      ValueError: ``value`` contains ``"\\0"``.
    """
    if "\0" in value:
        raise ValueError(f"{name}: must not contain a NUL character, got {value!r}")
    return value


# A number written other than as plain digits: the C library reads a
# numeric service with strtoul(), which skips leading blanks and takes a
# sign, and glibc keeps 16 bits of the result, so "+65616" and " 70000"
# would be ports 80 and 4464.  Trailing blanks are refused with them ("80 "
# is no service name either).
_NUMERIC_LOOKING = re.compile(r"\s*[-+]?\s*[0-9]+\s*")


def service_arg(value: object, name: str = "service") -> int | str:
    """A service: a port (an ``int``, or decimal digits) or a service name.

    Digits are read here, by this rule, and range-checked: the resolver
    never sees a text it could read as a number and wrap (SPEC §13).

    Returns:
      The port as an ``int``, or the name (``""`` for none) for the local
      services database.

    Raises:
      TypeError: neither a ``str`` nor an ``int`` (``bool`` included).
      ValueError: a port outside 0..65535; a number with a sign or blanks;
        a NUL; a name that cannot be encoded.
    """
    if isinstance(value, str):
        no_nul(value, name)
        if value.isascii() and value.isdigit():
            return port_arg(int(value), name)
        if _NUMERIC_LOOKING.fullmatch(value):
            raise ValueError(
                f"{name}: expected a port in decimal digits (0..{MAX_PORT}) "
                f"or a service name, got {value!r}"
            )
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{name}: {value!r} is not a valid service name ({exc.reason})"
            ) from None
        return value
    if is_int(value):
        return port_arg(value, name)
    raise TypeError(f"{name}: expected a str or an int, got {type_name(value)}")


def port_arg(value: object, name: str = "port") -> int:
    """A port: an ``int`` in 0..65535.

    Emilua wraps a port modulo 65536 (70000 becomes 4464); trio_emtcp
    refuses it instead, since such a port is always a mistake.

    Raises:
      TypeError: not an ``int``, or a ``bool``.
      ValueError: not in 0..65535.
    """
    if type(value) is not int:
        if not is_int(value):
            raise TypeError(f"{name}: expected an int, got {type_name(value)}")
        value = int(value)  # type: ignore[call-overload]
    assert isinstance(value, int)
    if not 0 <= value <= MAX_PORT:
        raise ValueError(f"{name}: must be in 0..{MAX_PORT}, got {value}")
    return value


def number_arg(
    value: object, name: str, *, expected: str, finite: bool = False
) -> float:
    """A number of seconds (``int`` or ``float``), at least 0, not NaN.

    Args:
      finite: refuse infinity too.

    Raises:
      TypeError: not an ``int`` or ``float``, or a ``bool``.
      ValueError: negative or NaN (or, with ``finite``, infinite).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected {expected}, got {type_name(value)}")
    if finite and not math.isfinite(value):
        raise ValueError(f"{name}: must be finite and >= 0, got {value}")
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{name}: must be >= 0, got {value}")
    try:
        return float(value)
    except OverflowError:
        # An int beyond a float's range: longer than any wait can last.
        if finite:
            raise ValueError(f"{name}: must be finite and >= 0, got {value}") from None
        return math.inf


def finite_seconds(value: object, name: str, *, option: str, limit: float) -> float:
    """Seconds (``int`` or ``float``) in ``0..limit``, for the option ``option``.

    Raises:
      TypeError: not an ``int`` or ``float`` (``bool`` included).
      ValueError: out of range, or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name}: {option} expects seconds as an int or a float, "
            f"got {type_name(value)}"
        )
    if not (math.isfinite(value) and 0 <= value <= limit):
        raise ValueError(
            f"{name}: {option} must be in 0..{limit} seconds (0: the kernel's "
            f"default), got {value}"
        )
    return float(value)


def bool_arg(value: object, name: str) -> bool:
    """A flag: ``True`` or ``False``, nothing else (not ``1``, not ``None``).

    Raises:
      TypeError: not a ``bool``.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type_name(value)}")
    return value


def choice(value: object, name: str, table: dict[str, T]) -> T:
    """One of the names of ``table``; what it maps to.

    Raises:
      TypeError: not a ``str``.
      ValueError: not one of the names (the message lists them).
    """
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str, got {type_name(value)}")
    try:
        return table[value]
    except KeyError:
        known = ", ".join(repr(k) for k in table)
        raise ValueError(f"{name}: expected one of {known}, got {value!r}") from None


# -- buffers ------------------------------------------------------------------
#
# One question decides every refusal of a buffer argument, whatever the call
# that met it (our own memoryview(), or a socket method in C): what is wrong
# with this object?  A str (encode it), a released memoryview (a ValueError:
# the type is right, its state is not), a buffer that is not C-contiguous,
# has more than one dimension (SPEC §13) or is not writable, or no buffer at
# all.  Any item size is accepted: the bytes are the buffer's, in order.


def _flat(value: object) -> memoryview:
    """A flat (``"B"``) view of ``value``; the caller releases it.

    Raises:
      TypeError: not a buffer, not C-contiguous, or multi-dimensional (an
        unworded refusal: the callers word it with :func:`buffer_error`).
      ValueError: a released ``memoryview``.
    """
    view = memoryview(value)  # type: ignore[arg-type]
    try:
        if view.ndim > 1:
            raise TypeError("multi-dimensional")
        return view.cast("B")  # TypeError unless C-contiguous
    finally:
        view.release()  # the cast holds the buffer on its own


def multi_dimensional(value: object) -> bool:
    """Whether a buffer the caller will hand to C has more than one dimension.

    ``socket.send``/``recv_into`` take any C-contiguous buffer; SPEC §13
    refuses the multi-dimensional ones everywhere, so the Socket's fast path
    asks this first.  Cheap for a ``memoryview``; ``bytes`` and ``bytearray``
    need not ask.

    Raises:
      TypeError: not a buffer.
      ValueError: a released ``memoryview``.
    """
    if type(value) is memoryview:
        return value.ndim > 1
    with memoryview(value) as view:  # type: ignore[arg-type]
        return view.ndim > 1


def _buffer_problem(value: object, *, writable: bool) -> str | None:
    """What keeps ``value`` from being used as a buffer, or ``None``.

    Only called once a use has failed: the probe takes a view.
    """
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        return "not a buffer"
    except ValueError:  # "operation forbidden on released memoryview object"
        return "released"
    with view:
        if not view.c_contiguous:
            return "not contiguous"
        if view.ndim > 1:
            return "multi-dimensional"
        if writable and view.readonly:
            return "read-only"
    return None


def buffer_error(
    value: object,
    name: str,
    *,
    writable: bool = False,
    accepted: str | None = None,
) -> TypeError | ValueError | None:
    """The refusal of a buffer argument, or ``None`` if nothing is wrong.

    Args:
      writable: the argument is written into (``read_some``'s ``buf``).
      accepted: what the type message says is accepted (``"a bytes-like
        object or None"``); by default the plain buffer kinds.

    Returns:
      ``ValueError`` for a released ``memoryview``; ``TypeError`` for a
      ``str``, a buffer that is not C-contiguous or has more than one
      dimension (or, with ``writable``, read-only), or an object that is no
      buffer; ``None`` when ``value``
      is a usable buffer (the failure the caller saw came from elsewhere).
    """
    if isinstance(value, str) and not writable:
        return TypeError(
            f"{name}: expected a bytes-like object, got str; encode it first"
        )
    problem = _buffer_problem(value, writable=writable)
    if problem is None:
        return None
    if problem == "released":
        return ValueError(f"{name}: got a released memoryview")
    if problem == "not contiguous":
        return TypeError(f"{name}: expected a C-contiguous buffer")
    if problem == "multi-dimensional":
        return TypeError(
            f"{name}: expected a one-dimensional buffer; flatten it with "
            "memoryview(...).cast('B')"
        )
    if writable:
        return TypeError(
            f"{name}: expected a writable buffer (bytearray, memoryview, array, "
            f"...), got {type_name(value)}"
        )
    return TypeError(
        f"{name}: expected {accepted or 'a bytes-like object'}, got {type_name(value)}"
    )


def write_buffer_error(value: object, name: str = "data") -> TypeError | ValueError:
    """The refusal of ``value`` as a bytes-like argument (it was refused)."""
    return buffer_error(value, name) or TypeError(
        f"{name}: expected a bytes-like object, got {type_name(value)}"
    )


def read_buffer_error(value: object, name: str = "buf") -> TypeError | ValueError:
    """The refusal of ``value`` as a writable buffer argument (it was refused)."""
    return buffer_error(value, name, writable=True) or TypeError(
        f"{name}: expected a writable buffer (bytearray, memoryview, array, "
        f"...), got {type_name(value)}"
    )


def bytes_view(value: object, name: str = "data") -> memoryview:
    """A flat (``"B"``) view of a bytes-like argument; release it after use.

    A one-dimensional C-contiguous buffer of any item size is accepted, as
    its bytes.

    Raises:
      TypeError: not a one-dimensional C-contiguous bytes-like object
        (``str``: encode it).
      ValueError: a released ``memoryview``.
    """
    if isinstance(value, str):
        raise write_buffer_error(value, name)
    try:
        return _flat(value)
    except (TypeError, ValueError):
        raise write_buffer_error(value, name) from None


def optional_bytes_view(value: object, name: str) -> memoryview | None:
    """:func:`bytes_view`, or ``None`` for ``None``.

    Raises:
      TypeError: neither ``None`` nor a C-contiguous bytes-like object.
      ValueError: a released ``memoryview``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        raise write_buffer_error(value, name)
    try:
        return _flat(value)
    except (TypeError, ValueError):
        raise buffer_error(
            value, name, accepted="a bytes-like object or None"
        ) or TypeError(f"{name}: expected a bytes-like object or None") from None


def writable_view(value: object, name: str = "buf") -> memoryview:
    """A flat view of a writable buffer argument; release it after use.

    Raises:
      TypeError: not a writable one-dimensional C-contiguous buffer.
      ValueError: a released ``memoryview``.
    """
    try:
        view = _flat(value)
    except (TypeError, ValueError):
        raise read_buffer_error(value, name) from None
    if view.readonly:
        view.release()
        raise read_buffer_error(value, name)
    return view


def bytes_copy(value: object, name: str, accepted: str) -> bytes:
    """A ``bytes`` copy of a bytes-like argument (the Scanner's separators).

    Raises:
      TypeError: not a one-dimensional C-contiguous bytes-like object
        (``str``: use bytes).
      ValueError: a released ``memoryview``.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        raise TypeError(f"{name}: expected {accepted}, got str; use bytes")
    try:
        with _flat(value) as view:
            return bytes(view)
    except (TypeError, ValueError):
        raise buffer_error(value, name, accepted=accepted) or TypeError(
            f"{name}: expected {accepted}, got {type_name(value)}"
        ) from None


def flag_names_arg(
    value: object, name: str, names: dict[str, int], expected: str
) -> int:
    """Flags given as an ``int`` (or an ``IntFlag``) or an iterable of names.

    Args:
      names: each accepted name and its bit.
      expected: the accepted types, for the message (``"an int or an
        ip.MessageFlag"``).

    Raises:
      TypeError: neither an ``int`` nor an iterable of ``str`` (a ``str``
        itself, and ``bytes``, are refused: they are not lists of names).
      ValueError: an unknown name (the message lists the known ones), or a
        negative ``int``.
    """
    if is_int(value):
        # No upper bound here: the caller's rule for the bits decides.
        return int_arg(value, name, maximum=None)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name}: expected an iterable of flag names, {expected}, "
            f"got {type_name(value)}"
        )
    bits = 0
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name}: expected flag names (str), got {type_name(item)}")
        try:
            bits |= names[item]
        except KeyError:
            known = ", ".join(sorted(names))
            raise ValueError(
                f"{name}: unknown flag {item!r}; known flags: {known}"
            ) from None
    return bits


def flag_bits_arg(
    bits: int,
    name: str,
    accepted: dict[str, int],
    *,
    call: str,
    bit_names: dict[int, str],
) -> int:
    """``bits``, if every bit set is one of ``accepted``'s.

    A flag the call does not expect can change what the kernel does with
    the data (SPEC §13: ``MSG_TRUNC`` drops it, ``MSG_ERRQUEUE`` makes a
    read spin), so every other bit is refused, by name where it has one.

    Args:
      accepted: the names the message lists, and their bits.
      call: the call, for the message (``"receive()"``).
      bit_names: names for single bits (``{0x20: "MSG_TRUNC"}``).

    Raises:
      ValueError: a bit outside ``accepted``.
    """
    allowed = 0
    for value in accepted.values():
        # int(): the ~ of an IntFlag (socket.MSG_*) keeps only its own bits.
        allowed |= int(value)
    refused = int(bits) & ~allowed
    if not refused:
        return bits
    parts = []
    for shift in range(refused.bit_length()):
        bit = 1 << shift
        if refused & bit:
            known = bit_names.get(bit)
            parts.append(f"{bit:#x} ({known})" if known else f"{bit:#x}")
    names = list(accepted)
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    raise ValueError(
        f"{name}: {call} does not take {', '.join(parts)}; it takes {listed}"
    )


def nbytes(value: Any, *, writable: bool = False) -> int:
    """A buffer's size in bytes, without keeping a view of it.

    Raises:
      TypeError: not a one-dimensional C-contiguous buffer (or, with
        ``writable``, a read-only one); the callers word it with
        :func:`buffer_error`.
      ValueError: a released ``memoryview``.
    """
    with memoryview(value) as view:
        if not view.c_contiguous or view.ndim > 1 or (writable and view.readonly):
            raise TypeError("not a usable buffer")
        return view.nbytes
