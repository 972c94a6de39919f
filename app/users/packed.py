"""A profile packed into a few hundred bytes, for the in-process store (a Python object graph of the same profile takes
about 3 KiB). Times are whole seconds (as in Redis), distress to 1/10,000."""

from __future__ import annotations

import struct

from app.users.profile import DistressPoint, Profile
from classifiers.preferences import FIELDS, PREFERENCES

_HEADER = struct.Struct("<BBB")  # preferences, points, field index (255: none)
_PREFERENCE = struct.Struct("<BI")  # preference index, second
_POINT = struct.Struct("<IH")  # second, distress * _SCALE
_NO_FIELD = 255
_SCALE = 10_000


def pack(profile: Profile) -> bytes:
    work = FIELDS.index(profile.work) if profile.work in FIELDS else _NO_FIELD
    parts = [_HEADER.pack(len(profile.stated), len(profile.distress), work)]
    parts += [_PREFERENCE.pack(PREFERENCES.index(name), int(at)) for name, at in profile.stated.items()]
    parts += [_POINT.pack(int(p.at), round(min(max(p.distress, 0.0), 1.0) * _SCALE)) for p in profile.distress]
    return b"".join(parts)


def unpack(data: bytes) -> Profile:
    preferences, points, work = _HEADER.unpack_from(data)
    offset = _HEADER.size
    stated = {}
    for _ in range(preferences):
        index, at = _PREFERENCE.unpack_from(data, offset)
        stated[PREFERENCES[index]] = float(at)
        offset += _PREFERENCE.size
    distress = []
    for _ in range(points):
        at, value = _POINT.unpack_from(data, offset)
        distress.append(DistressPoint(float(at), value / _SCALE))
        offset += _POINT.size
    return Profile(stated, FIELDS[work] if work != _NO_FIELD else None, tuple(distress))
