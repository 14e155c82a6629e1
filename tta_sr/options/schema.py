"""Declared option blocks: each key's default, accepted types and one-line meaning, and the check that fills them.

A :class:`Block` is a table ``{key: Option | Block}`` for one mapping of a BasicSR option file (``train``,
``train.controller``, ``gate``, ...). :func:`resolve` returns a copy of a given mapping with every unknown key
refused (the error names the key and its nearest known neighbour), every value checked against its types and
choices, and every missing key filled with its default; a nested block is resolved the same way. Resolving a
resolved mapping gives it back unchanged, so every layer that reads options may resolve them again.
:func:`markdown_table` writes a block as the Markdown table that ``docs/adaptation.md`` shows.
"""
import copy
import difflib
import re
from dataclasses import dataclass, field

from tta_sr.utils.errors import UserInputError


class OptionError(UserInputError, ValueError):
    """An option file names a key that its block does not know, or gives a value of the wrong kind (a one-line
    error on the command line, ``tta_sr.utils.errors``)."""


REQUIRED = object()  # the default of a key the option file must give (BasicSR reads it unconditionally)


@dataclass(frozen=True)
class Option:
    """One key: ``default`` (``REQUIRED``: no default), ``types`` (accepted Python types; ``None`` is accepted when
    ``nullable`` or the default is ``None``), ``help`` (one line), ``choices`` (allowed values, if limited)."""
    default: object
    types: tuple
    help: str
    choices: tuple = ()
    nullable: bool = False

    def check(self, value, where):
        if value is None and (self.nullable or self.default is None):
            return
        if isinstance(value, bool) and bool not in self.types:  # YAML's true is not a number
            raise OptionError(f'{where} must be {_type_names(self.types)}, got {value!r}')
        if not isinstance(value, self.types):
            raise OptionError(f'{where} must be {_type_names(self.types)}, got {value!r} ({type(value).__name__})')
        if self.choices and value not in self.choices:
            raise OptionError(f'{where} must be one of {", ".join(map(repr, self.choices))}, got {value!r}')


@dataclass(frozen=True)
class Block:
    """A mapping's declared keys. ``patterns``: regular expressions of further keys it accepts as they are
    (``pretrain_network_.*`` in ``path``); ``fill``: whether :func:`resolve` adds the defaults (False for a block
    whose missing keys come from elsewhere, such as the branch's own controller settings); ``nullable``: the
    block may be ``None`` or absent (resolved to ``None``, e.g. ``val`` turns validation off)."""
    help: str
    keys: dict
    patterns: tuple = ()
    fill: bool = True
    nullable: bool = False
    extra: dict = field(default_factory=dict)  # further accepted keys with their one-line meaning, not filled

    def known(self):
        return list(self.keys) + list(self.extra)

    def default(self, key):
        """The declared default of ``key`` (a deep copy)."""
        entry = self.keys[key]
        return resolve(entry, None, key) if isinstance(entry, Block) else copy.deepcopy(entry.default)


def _type_names(types):
    return ' or '.join({'NoneType': 'null', 'str': 'a string', 'int': 'an integer', 'float': 'a number',
                        'bool': 'true/false', 'dict': 'a mapping', 'list': 'a list'}.get(t.__name__, t.__name__)
                       for t in types)


def nearest(name, known):
    """The known key closest to ``name`` (difflib ratio >= 0.6), or None."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_error(where, key, known):
    """The error for an unknown ``key`` of the block at ``where``: names the nearest known key, else all."""
    guess = nearest(key, known)
    hint = f'did you mean {where}.{guess}?' if guess else f'known keys: {", ".join(map(str, known))}'
    return OptionError(f'unknown option {where}.{key}: {hint}')


def resolve(block, given, where):
    """A validated copy of ``given`` (a mapping or None) for ``block`` at dotted path ``where``, defaults filled."""
    if given is None and block.nullable:
        return None
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise OptionError(f'{where} must be a mapping of options, got {given!r}')
    for key in given:
        if key not in block.keys and key not in block.extra and not any(re.fullmatch(p, str(key))
                                                                         for p in block.patterns):
            raise unknown_key_error(where, key, block.known())
    out = {}
    for key, entry in block.keys.items():
        path = f'{where}.{key}'
        if isinstance(entry, Block):
            if key in given or (block.fill and not entry.nullable):
                out[key] = resolve(entry, given.get(key), path)
            continue
        if key in given:
            entry.check(given[key], path)
            out[key] = copy.deepcopy(given[key])
        elif block.fill and entry.default is not REQUIRED:
            out[key] = copy.deepcopy(entry.default)
    out.update({key: copy.deepcopy(value) for key, value in given.items() if key not in block.keys})
    return out


def markdown_table(block, where):
    """Rows ``| key | default | meaning |`` of ``block`` and its sub-blocks (dotted keys), as Markdown text."""
    lines = [f'`{where}`: {block.help}', '', '| key | default | meaning |', '| --- | --- | --- |']
    lines += _rows(block, '')
    return '\n'.join(lines) + '\n'


def _rows(block, prefix):
    rows = []
    for key, entry in block.keys.items():
        if isinstance(entry, Block):
            rows.append(f'| `{prefix}{key}` | | {entry.help} |')
            rows += _rows(entry, f'{prefix}{key}.')
            continue
        default = 'required' if entry.default is REQUIRED else f'`{_yaml_value(entry.default)}`'
        choices = f' ({", ".join(map(str, entry.choices))})' if entry.choices else ''
        rows.append(f'| `{prefix}{key}` | {default} | {entry.help}{choices} |')
    rows += [f'| `{prefix}{key}` | | {meaning} |' for key, meaning in block.extra.items()]
    return rows


def _yaml_value(value):
    import yaml
    text = yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False)
    return text.strip().removesuffix('\n...').strip()


__all__ = ['OptionError', 'REQUIRED', 'Option', 'Block', 'nearest', 'unknown_key_error', 'resolve', 'markdown_table']
