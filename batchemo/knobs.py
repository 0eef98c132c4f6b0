"""The fields of batchemo's option classes: declared once with what they mean, checked when an options object is
made (types and ranges, an error naming the field as Python spells it), and described in the class's docstring
from those same declarations, so `help(VideoOptions)` gives each field's meaning, default and valid range."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import textwrap
import types
import typing
from dataclasses import MISSING
from typing import Any, Callable, Iterable

import numpy as np


class OptionError(ValueError):
    """A value an options class refuses. `str()` names the field as Python spells it ('every must be at least 1
    (got 0)'); `cli` names the command-line option instead ('--every must be at least 1 (got 0)')."""

    def __init__(self, name: str, problem: str, flag: str = ""):
        self.name, self.problem = name, problem
        self.flag = flag or "--" + name.replace("_", "-")
        super().__init__(f"{name} {problem}")

    @property
    def cli(self) -> str:
        return f"{self.flag} {self.problem}"


def knob(default: Any = MISSING, doc: str = "", *, factory: Callable[[], Any] | Any = MISSING) -> Any:
    """A dataclass field with its meaning (and unit) for the class's docstring."""
    return dataclasses.field(default=default, default_factory=factory, metadata={"doc": doc})


def range_problem(rng, value: float) -> str | None:
    """What is wrong with `value` for the Range `rng` ('must be at least 1 (got 0)'), None when nothing is."""
    if not math.isfinite(value):  # NaN passes every comparison; an infinite scale factor never ends
        return f"must be a finite number (got {value})"
    if (value <= rng.low if rng.strict else value < rng.low) or (rng.high is not None and value > rng.high):
        bound = f"more than {rng.low:g}" if rng.strict else f"at least {rng.low:g}"
        upper = f" and at most {rng.high:g}" if rng.high is not None else ""
        return f"must be {bound}{upper} (got {value:g})"
    return None


def check_fields(options, ranges: dict) -> None:
    """Refuse a value of the wrong type (TypeError) or outside its range (OptionError), naming the field; store
    numbers as plain int and float, so that a NumPy integer or an int given for a float reads back as the
    same run.json and the same analysis settings. Call from `__post_init__` of a frozen dataclass."""
    hints = _hints(type(options))
    for f in dataclasses.fields(options):
        if f.init:
            object.__setattr__(options, f.name, _coerced(f.name, getattr(options, f.name), hints[f.name]))
    for name, rng in ranges.items():
        value = getattr(options, name)
        problem = None if value is None else range_problem(rng, value)
        if problem:
            raise OptionError(name, problem, rng.flag)


@functools.cache
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)  # evaluates the annotations' text: once per class, not per object made


def _type_name(tp) -> str:
    return {int: "a whole number", float: "a number", bool: "True or False", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _coerced(name: str, value, hint):
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    tp = next((a for a in args if a is not type(None)), hint) if optional else hint
    if value is None:
        if optional:
            return None
        raise TypeError(f"{name} must be {_type_name(tp)} (got None)")
    wrong = TypeError(f"{name} must be {_type_name(tp)}{' or None' if optional else ''} "
                      f"(got {value!r}, {type(value).__name__})")
    if tp is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise wrong
        return bool(value)
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise wrong
        if tp is float:
            return float(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        raise OptionError(name, f"must be a whole number (got {value!r})")
    if tp is str:
        if not isinstance(value, str):
            raise wrong
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise wrong
    return value


def described(ranges: dict | None = None, extra: dict[str, str] | None = None) -> Callable[[type], type]:
    """Class decorator: the dataclass's docstring gets a 'Fields' section, one entry per field with its type,
    default, valid range (from `ranges`, the table the checks use) and meaning (`knob`'s doc). `extra`: range
    text for a field checked by a rule of its own."""
    def decorate(cls: type) -> type:
        hints = typing.get_type_hints(cls)
        lines = ["", "Fields:"]  # under a docstring cleaned of its indentation, which help() then keeps
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            rng = (extra or {}).get(f.name) or (ranges[f.name].text.strip("()") if f.name in (ranges or {}) else "")
            default = _default_text(f)
            lines.append(f"  {f.name}: {_hint_text(hints[f.name])}" + (f" = {default}" if default else "")
                         + (f"   [{rng}]" if rng else ""))
            lines += [f"      {line}" for line in _wrap(f.metadata.get("doc", ""))]
        cls.__doc__ = inspect.cleandoc(cls.__doc__ or "") + "\n" + "\n".join(lines)
        return cls
    return decorate


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not MISSING:
        return repr(f.default)
    if f.default_factory is not MISSING:
        return f"{getattr(f.default_factory, '__name__', 'a new value')}()"
    return ""  # required: a result's field, say


def _hint_text(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else _hint_text(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


def _wrap(text: str, width: int = 100) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width) if text else []


def setting_changes(old: dict, new: dict, defaults: dict | None = None, skip: Iterable[str] = ()) -> list[str]:
    """What differs between two runs' recorded settings, as 'key old -> new' (nested keys joined by dots), the
    one test behind every refusal to resume or reuse with other settings (a report, a training run, a fold).
    `defaults`: the value of a key `old` predates (recorded before that setting existed); a key only `old` has
    (a setting since removed) is passed over; `skip`: keys whose difference the caller handles."""
    old, new = _flat(old), _flat(new)
    base = _flat(defaults) if defaults is not None else {}
    skip = set(skip)
    return [f"{k} {old.get(k, base.get(k))} -> {new[k]}" for k in sorted(new)
            if k not in skip and old.get(k, base.get(k)) != new[k]]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out
