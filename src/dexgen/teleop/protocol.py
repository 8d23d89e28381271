"""The policy server's wire format (``dexgen serve``): msgpack messages over a websocket, NumPy arrays inside.

Every message is one binary websocket frame holding a msgpack map. A request carries ``v`` (``PROTOCOL_VERSION``),
``op`` (``metadata``, ``reset``, ``act``, ``command``, ``calibrate``) and optionally ``id`` (echoed in the reply);
a reply carries ``v``, ``id``, ``ok`` and either the op's fields or ``error``, one line naming the problem.

An array travels as a map ``{"__ndarray__": True, "dtype": "<f4", "shape": [...], "data": <bytes>}`` (little-endian,
C order; numeric dtypes only) or, from a client without NumPy, as nested lists of numbers.
"""

from __future__ import annotations

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
"""Version of the message layout; a request of another version is answered with an error."""
_ARRAY_KEY = "__ndarray__"


class ProtocolError(ValueError):
    """A message that is not a request of this protocol (undecodable, wrong version, unknown op, missing field)."""


def _encode(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"cannot send an array of dtype {obj.dtype}")
        arr = np.ascontiguousarray(obj, dtype=obj.dtype.newbyteorder("<"))
        return {_ARRAY_KEY: True, "dtype": arr.dtype.str, "shape": list(arr.shape), "data": arr.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot send a {type(obj).__name__}")


def _decode(obj: dict):
    if obj.get(_ARRAY_KEY) is not True:
        return obj
    try:
        dtype = np.dtype(obj["dtype"])
        shape = tuple(int(n) for n in obj["shape"])
        if dtype.kind not in "biuf":
            raise ValueError(f"dtype {dtype} is not numeric")
        return np.frombuffer(obj["data"], dtype=dtype).reshape(shape)
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError(f"malformed array in the message: {e}") from None


def pack(message: dict) -> bytes:
    """One message (a dict of numbers, strings, lists, dicts and NumPy arrays) as msgpack bytes."""
    return msgpack.packb(message, default=_encode, use_bin_type=True)


def unpack(data: bytes | str) -> dict:
    """The message in ``data``; a ProtocolError naming the problem if it is not a msgpack map."""
    if isinstance(data, str):
        raise ProtocolError("text frame: this server speaks msgpack in binary websocket frames")
    try:
        message = msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=False)
    except ProtocolError:
        raise
    except Exception as e:  # msgpack raises several types for bad input (ExtraData, FormatError, ValueError, ...)
        raise ProtocolError(f"undecodable message ({type(e).__name__}): send one msgpack map per frame") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a msgpack map, got {type(message).__name__}")
    return message


def check_request(message: dict, ops: tuple[str, ...]) -> str:
    """The op of a request, checked: right version, a known op; a ProtocolError otherwise."""
    version = message.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {version!r}: this server speaks version {PROTOCOL_VERSION} "
                            "(field 'v')")  # fmt: skip
    op = message.get("op")
    if op not in ops:
        raise ProtocolError(f"unknown op {op!r}; expected one of {', '.join(ops)}")
    return op


def array_field(message: dict, name: str, *, required: bool = False) -> np.ndarray | None:
    """Field ``name`` of a request as a float64 array (from an array or nested lists); None if absent and not
    required; a ProtocolError if required and absent, a ValueError if not numeric."""
    value = message.get(name)
    if value is None:
        if required:
            raise ProtocolError(f"field {name!r} is missing")
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"field {name!r} must be an array of numbers") from None
    return arr
