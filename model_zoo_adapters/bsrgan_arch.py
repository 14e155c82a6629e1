"""BSRGAN (Zhang et al., ICCV 2021) as BasicSR's ``RRDBNet``, loading the published ``BSRGAN.pth`` as is.

BSRGAN's generator is ESRGAN's RRDBNet (x4: conv_first -> 23 RRDB -> conv -> 2 x (nearest x2, conv)
-> conv -> conv). The published file is a bare state dict in KAIR's key names; BasicSR names the
same tensors differently (shapes are identical):

=====================================  =====================================
KAIR / BSRGAN.pth                      BasicSR RRDBNet
=====================================  =====================================
``conv_first.*``                       ``conv_first.*``
``RRDB_trunk.{i}.RDB{k}.conv{j}.*``    ``body.{i}.rdb{k}.conv{j}.*``
``trunk_conv.*``                       ``conv_body.*``
``upconv1.*`` / ``upconv2.*``          ``conv_up1.*`` / ``conv_up2.*``
``HRconv.*``                           ``conv_hr.*``
``conv_last.*``                        ``conv_last.*``
=====================================  =====================================

:func:`bsrgan_to_basicsr` and :func:`basicsr_to_bsrgan` are exact inverses on these keys (keys of
neither layout pass through unchanged, so strict loading still reports them).
"""
import re
from collections import OrderedDict

from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.utils.registry import ARCH_REGISTRY

# (KAIR pattern, BasicSR pattern) per tensor-name prefix; {i}, {k}, {j} are digits.
_PLAIN_RENAMES = (('trunk_conv.', 'conv_body.'), ('upconv1.', 'conv_up1.'), ('upconv2.', 'conv_up2.'),
                  ('HRconv.', 'conv_hr.'))
_KAIR_TRUNK = re.compile(r'^RRDB_trunk\.(\d+)\.RDB(\d+)\.')
_BASICSR_BODY = re.compile(r'^body\.(\d+)\.rdb(\d+)\.')


def _rename_bsrgan_key(key: str) -> str:
    match = _KAIR_TRUNK.match(key)
    if match:
        return f'body.{match.group(1)}.rdb{match.group(2)}.' + key[match.end():]
    for old, new in _PLAIN_RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _rename_basicsr_key(key: str) -> str:
    match = _BASICSR_BODY.match(key)
    if match:
        return f'RRDB_trunk.{match.group(1)}.RDB{match.group(2)}.' + key[match.end():]
    for old, new in _PLAIN_RENAMES:
        if key.startswith(new):
            return old + key[len(new):]
    return key


def _renamed(state_dict, rename):
    out = OrderedDict((rename(k), v) for k, v in state_dict.items())
    if len(out) != len(state_dict):
        raise ValueError('state dict mixes both key layouts: renaming made two keys collide '
                         f'({len(state_dict)} keys in, {len(out)} out); pass one layout only')
    return out


def is_bsrgan_layout(state_dict) -> bool:
    """True when any key is in KAIR's layout (``RRDB_trunk.``, ``trunk_conv.``, ``upconv1.``, ``HRconv.``)."""
    return any(_rename_bsrgan_key(k) != k for k in state_dict)


def bsrgan_to_basicsr(state_dict) -> OrderedDict:
    """KAIR/BSRGAN key names -> BasicSR ``RRDBNet`` key names (same tensors, same order)."""
    return _renamed(state_dict, _rename_bsrgan_key)


def basicsr_to_bsrgan(state_dict) -> OrderedDict:
    """BasicSR ``RRDBNet`` key names -> KAIR/BSRGAN key names; the exact inverse of :func:`bsrgan_to_basicsr`."""
    return _renamed(state_dict, _rename_basicsr_key)


@ARCH_REGISTRY.register()
class BSRGANNet(RRDBNet):
    """BasicSR's ``RRDBNet`` (x4) that also loads state dicts in BSRGAN's published key layout.

    ``(B, num_in_ch, H, W) in [0, 1] -> (B, num_out_ch, 4H, 4W)``. Defaults are the published BSRGAN x4
    model (``num_feat=64, num_block=23, num_grow_ch=32``); ``state_dict()`` is in BasicSR's layout.

    Only ``scale=4``: BSRGAN's x2 model upsamples once by nearest x2, whereas BasicSR's x2 RRDBNet
    pixel-unshuffles the input and upsamples twice, so the two cannot share weights.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        if scale != 4:
            raise ValueError(f'BSRGANNet supports scale=4 only (the layout of the published BSRGAN.pth), got '
                             f'scale={scale}; use RRDBNet for other scales')
        super().__init__(num_in_ch, num_out_ch, scale=scale, num_feat=num_feat, num_block=num_block,
                         num_grow_ch=num_grow_ch)
        self.register_load_state_dict_pre_hook(_rename_bsrgan_keys_in_place)


def _rename_bsrgan_keys_in_place(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                 error_msgs):
    """Load-time hook: rename this module's KAIR-layout keys (under ``prefix``) to BasicSR's names."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        new_key = prefix + _rename_bsrgan_key(key[len(prefix):])
        if new_key != key:
            if new_key in state_dict:
                error_msgs.append(f'{key} and {new_key} are both present (BSRGAN and BasicSR layouts mixed)')
                continue
            state_dict[new_key] = state_dict.pop(key)
