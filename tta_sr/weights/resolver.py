"""Find, verify, convert and load pretrained weights named in ``tta_sr/weights/manifest.yml``.

Resolution order of :func:`resolve_weights` (first hit wins):

1. ``explicit_path`` (must exist);
2. ``name_or_path`` when it is an existing file;
3. ``cache_dir()/<filename>`` (the official file; sha256-checked when the manifest has one);
4. ``cache_dir()/<convert_from.filename>`` (a previous conversion; sha256-checked);
5. conversion from the installed ncnn package (written atomically to the cache, sha256-checked);
6. :class:`WeightsNotFoundError` saying where to put the file and where to download it.
"""
import functools
import hashlib
import io
import os
import pickle
import zipfile

import torch
import yaml
from torch import nn
from torch.nn import functional as F

from tta_sr.utils.atomic import atomic_write_bytes
from tta_sr.utils.errors import UserInputError

ENV_VAR = 'TTA_SR_WEIGHTS'
MANIFEST_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'manifest.yml')
# modules that register an arch into ARCH_REGISTRY when the manifest gives no ``arch_module``
_DEFAULT_ARCH_MODULES = {'SRVGGNetCompact': 'realesrgan.archs.srvgg_arch'}


class WeightsNotFoundError(FileNotFoundError):
    """No weights file could be found or made for a name."""


class WeightsIntegrityError(UserInputError, ValueError):
    """A weights file is corrupt, has the wrong sha256, or does not fit its architecture."""


def cache_dir() -> str:
    """Folder of downloaded / converted weights: ``$TTA_SR_WEIGHTS``, default ``~/.cache/tta_sr/weights``."""
    return os.path.abspath(os.path.expanduser(os.environ.get(ENV_VAR) or '~/.cache/tta_sr/weights'))


@functools.lru_cache(maxsize=4)
def _load_manifest(path, mtime):
    with open(path, 'r', encoding='utf-8') as f:
        manifest = yaml.safe_load(f) or {}
    if not isinstance(manifest, dict):
        raise ValueError(f'{path}: expected a mapping name -> entry, found {type(manifest).__name__}')
    return manifest


def load_manifest() -> dict:
    """The whole manifest as ``{name: entry}`` (re-read when the file changes)."""
    return _load_manifest(MANIFEST_PATH, os.path.getmtime(MANIFEST_PATH))


def manifest_entry(name: str) -> dict:
    """The manifest entry of ``name`` (a copy); ``KeyError`` listing the known names otherwise."""
    manifest = load_manifest()
    if name not in manifest:
        raise KeyError(f'no weights named {name!r} in {MANIFEST_PATH}; known names: {", ".join(sorted(manifest))}')
    return dict(manifest[name])


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def _verify(path, expected):
    if expected:
        found = sha256_file(path)
        if found != expected.lower():
            raise WeightsIntegrityError(
                f'weights file {path} has sha256 {found}, expected {expected}; the file is corrupt or a '
                f'different version: delete it and download it again')
    return path


def state_dict_bytes(state_dict, param_key=None) -> bytes:
    """Deterministic ``torch.save`` bytes of ``{param_key: state_dict}`` (or the bare dict when no key).

    Saved through an in-memory buffer so that the zip's inner folder name does not depend on the
    destination file name; the same tensors always give the same bytes (and sha256).
    """
    obj = {param_key: state_dict} if param_key else state_dict
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def convert_entry(entry: dict, dest: str) -> str:
    """Convert the entry's ``convert_from`` ncnn model and write it to ``dest`` atomically.

    The bytes are checked against ``convert_from.sha256`` (when set) before anything is written.
    """
    from tta_sr.weights.ncnn import convert_package_model

    conv = entry['convert_from']
    state = convert_package_model(conv['package'], conv['model'], entry['arch'], entry.get('arch_kwargs') or {})
    data = state_dict_bytes(state, entry.get('param_key'))
    expected = conv.get('sha256')
    found = hashlib.sha256(data).hexdigest()
    if expected and found != expected.lower():
        raise WeightsIntegrityError(
            f'converting {conv["package"]}/models/{conv["model"]} gave sha256 {found}, the manifest expects '
            f'{expected} for {dest}; the installed package differs from the one the manifest was made with')
    return atomic_write_bytes(dest, data)


def _not_found_message(name, entry):
    path = os.path.join(cache_dir(), entry['filename'])
    msg = (f'weights {name!r} not found: expected file {path}. Download {entry["url"]} into {cache_dir()} '
           f'(set the environment variable {ENV_VAR} to use another folder), or pass an explicit path.')
    if entry.get('convert_from'):
        conv = entry['convert_from']
        msg += (f' It could also be converted offline from the python package {conv["package"]!r} '
                f'(model {conv["model"]}), which is not installed or lacks that model.')
    return msg


def resolve_weights(name_or_path: str, explicit_path: str = None) -> str:
    """Path of an existing, verified weights file for a manifest name or a file path (order: module doc)."""
    if explicit_path is not None:
        path = os.path.abspath(os.path.expanduser(str(explicit_path)))
        if not os.path.isfile(path):
            raise WeightsNotFoundError(f'explicit weights path {path} does not exist (given for {name_or_path!r})')
        return path
    candidate = os.path.expanduser(str(name_or_path))
    if os.path.isfile(candidate):
        return os.path.abspath(candidate)
    manifest = load_manifest()
    if name_or_path not in manifest:
        raise WeightsNotFoundError(f'{name_or_path!r} is neither an existing file nor a name in {MANIFEST_PATH}; '
                                   f'known names: {", ".join(sorted(manifest))}')
    entry = manifest_entry(name_or_path)
    official = os.path.join(cache_dir(), entry['filename'])
    if os.path.isfile(official):
        return _verify(official, entry.get('sha256'))
    conv = entry.get('convert_from')
    if conv:
        converted = os.path.join(cache_dir(), conv['filename'])
        if os.path.isfile(converted):
            return _verify(converted, conv.get('sha256'))
        try:
            return convert_entry(entry, converted)
        except (FileNotFoundError, ImportError) as err:
            raise WeightsNotFoundError(_not_found_message(name_or_path, entry) + f' ({err})') from err
    raise WeightsNotFoundError(_not_found_message(name_or_path, entry))


def load_state_dict(path: str, param_key: str = None) -> dict:
    """Load a state dict from ``path`` (``weights_only=True``, on CPU).

    Picks ``ckpt[param_key]`` when ``param_key`` is given, else ``params_ema`` or ``params`` when
    present, else the file's top-level dict. Corrupt/truncated files -> :class:`WeightsIntegrityError`.
    """
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise WeightsIntegrityError(f'weights file {path} cannot be read (truncated or corrupt?): {err}; '
                                    f'delete it and download or convert it again') from err
    if not isinstance(ckpt, dict):
        raise WeightsIntegrityError(f'weights file {path} holds a {type(ckpt).__name__}, expected a dict')
    if param_key is not None:
        if param_key not in ckpt:
            raise WeightsIntegrityError(f'weights file {path} has no key {param_key!r}; keys: {list(ckpt)[:10]}')
        ckpt = ckpt[param_key]
    else:
        for key in ('params_ema', 'params'):
            if key in ckpt:
                ckpt = ckpt[key]
                break
    if not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise WeightsIntegrityError(f'weights file {path}: the state dict holds non-tensor values')
    return ckpt


class PostResize(nn.Module):
    """``F.interpolate(net(x), size=floor(s * (H', W')), mode)`` for graphs that resize the output.

    ``(B, C, H, W) -> (B, C, floor(s*r*H), floor(s*r*W))`` with ``r`` the net's scale; the size (not the
    factor) is passed so that the sampling grid is ``in/out``, as in ncnn's Interp.
    """

    def __init__(self, net: nn.Module, scale_factor: float, mode: str = 'bicubic'):
        super().__init__()
        self.net = net
        self.scale_factor = float(scale_factor)
        self.mode = mode

    def forward(self, x):
        out = self.net(x)
        size = (int(out.shape[-2] * self.scale_factor), int(out.shape[-1] * self.scale_factor))
        kwargs = {} if self.mode == 'nearest' else {'align_corners': False}
        return F.interpolate(out, size=size, mode=self.mode, **kwargs)


def build_arch(entry: dict) -> nn.Module:
    """``ARCH_REGISTRY.get(entry['arch'])(**entry['arch_kwargs'])``, importing ``arch_module`` first if needed."""
    import importlib

    from basicsr.utils.registry import ARCH_REGISTRY

    arch = entry['arch']
    module = entry.get('arch_module') or _DEFAULT_ARCH_MODULES.get(arch)
    if arch not in ARCH_REGISTRY and module:
        importlib.import_module(module)
    return ARCH_REGISTRY.get(arch)(**(entry.get('arch_kwargs') or {}))


MANIFEST_KEY = object()  # build_pretrained: read the state dict under the manifest entry's param_key


def build_pretrained(name: str, device='cpu', explicit_path: str = None, param_key=MANIFEST_KEY) -> nn.Module:
    """Build the manifest's arch for ``name``, load its weights with ``strict=True``; returns it in eval mode.

    ``explicit_path`` replaces the manifest's file (e.g. a tta_sr checkpoint of that arch); ``param_key`` is
    the key of the state dict in the file: the entry's by default, ``None`` for ``params_ema``, else
    ``params``, else the whole file (as :func:`load_state_dict`), or a key.
    Not frozen: callers that need a frozen copy use ``tta_sr.utils.freeze.freeze``. Entries with
    ``post_resize`` come wrapped in :class:`PostResize` (the underlying net is ``.net``).
    """
    entry = manifest_entry(name)
    path = resolve_weights(name, explicit_path)
    state = load_state_dict(path, entry.get('param_key') if param_key is MANIFEST_KEY else param_key)
    net = build_arch(entry)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightsIntegrityError(f'weights file {path} does not fit {entry["arch"]}'
                                    f'({entry.get("arch_kwargs")}): {err}') from err
    post = entry.get('post_resize')
    if post:
        net = PostResize(net, post['scale_factor'], post.get('mode', 'bicubic'))
    return net.to(device).eval()
