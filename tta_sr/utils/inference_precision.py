"""Faster inference paths for an SR network: lower precision and the channels-last memory format.

A *path* is ``(precision, channels_last)``:

* ``'fp32'``: the network as it is (the reference);
* ``'bf16'``: the forward under ``torch.autocast(device, torch.bfloat16)`` (convolutions in bfloat16, weights
  kept in float32); worth it on CPUs with bf16 dot-product instructions (``avx512_bf16`` / ``amx_bf16``), see
  :func:`bf16_supported`;
* ``'fp16'``: CUDA only, the network cast to half precision (``net.half()``) and fed half input, as
  ``tta-sr upscale --half`` has always done;
* ``channels_last``: the weights and each input in ``torch.channels_last`` layout (NHWC), which oneDNN's
  convolutions prefer.

:class:`PreparedNet` applies a path to a network; it always returns float32, so that tiles are blended in
float32. A path is acceptable when its output is within :data:`TOLERANCE` of the fp32 output (mean and max
absolute difference on [0, 1] outputs). :func:`fastest_path` (``--precision auto``) times every path this device
supports on a probe image and keeps the fastest acceptable one; fp32 always is, so it is the fallback.
"""
import contextlib
import copy
import time

import torch

PRECISIONS = ('fp32', 'bf16', 'fp16')
TOLERANCE = {'mean': 0.5 / 255, 'max': 2 / 255}  # on [0, 1] outputs, against fp32
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16', 'bf16')  # x86 flags; 'bf16' is the aarch64 feature


def cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The set of CPU feature flags (x86 ``flags``, aarch64 ``Features``) of the first CPU; empty if unknown."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() in ('flags', 'Features'):
                    return set(value.split())
    except OSError:
        pass
    return set()


def bf16_supported(device='cpu'):
    """Whether bfloat16 runs natively on ``device``: CUDA's own check, or on CPU a vector capability of torch's
    kernels (``torch.backends.cpu.get_cpu_capability()``, not ``DEFAULT`` / ``NO AVX``) and a bf16 instruction
    flag in ``/proc/cpuinfo``. Without them oneDNN emulates bf16, slower than fp32."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.is_bf16_supported()
    if device.type != 'cpu' or torch.backends.cpu.get_cpu_capability() in ('DEFAULT', 'NO AVX'):
        return False
    return bool(cpu_flags() & set(BF16_CPU_FLAGS))


def unsupported_reason(precision, device):
    """Why ``precision`` cannot run on ``device``, worded to follow its name (``'needs a CUDA device ...'``), or
    None when it can."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        return f'is not one of {", ".join(PRECISIONS)}'
    if precision == 'fp16' and device.type != 'cuda':
        return 'needs a CUDA device (half precision is not used on CPU)'
    if precision == 'bf16' and not bf16_supported(device):
        return (f'needs bf16 instructions ({" / ".join(BF16_CPU_FLAGS[:2])}), which this CPU lacks; use fp32'
                if device.type == 'cpu' else f'is not supported by {device}')
    return None


def supported_paths(device):
    """``[(precision, channels_last)]`` that run on ``device``, fp32 first; fp16 only on CUDA."""
    return [(p, cl) for p in PRECISIONS if unsupported_reason(p, device) is None for cl in (False, True)]


def path_name(precision, channels_last):
    """``'bf16 + channels_last'`` style label of a path."""
    return precision + (' + channels_last' if channels_last else '')


class PreparedNet:
    """``net`` on one path: a callable ``(B, C, h, w)`` float32 -> ``(B, C', s h, s w)`` float32.

    ``net`` is changed in place: ``'fp16'`` casts it to half, ``channels_last`` converts its weights' layout
    (both stay valid for any later use of ``net``, but fp16 rounds the weights); ``'bf16'`` alone leaves it
    as it is. Runs under ``torch.no_grad``; the output may be in channels-last layout.
    """

    def __init__(self, net, precision='fp32', channels_last=False):
        if precision not in PRECISIONS:
            raise ValueError(f'PreparedNet: precision must be one of {PRECISIONS}, got {precision!r}')
        if precision == 'fp16':
            net = net.half()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net, self.precision, self.channels_last = net, precision, channels_last

    def forward_context(self, device_type):
        """The context the forward runs in: bf16 autocast for ``'bf16'``, else nothing."""
        if self.precision == 'bf16':
            return torch.autocast(device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self, x):
        if self.precision == 'fp16':
            x = x.half()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), self.forward_context(x.device.type):
            return self.net(x).float()


def output_difference(reference, out):
    """``(mean, max)`` absolute difference of two outputs clipped to [0, 1] (tensors of one shape), in [0, 1] units."""
    diff = (out.float().clamp(0, 1) - reference.float().clamp(0, 1)).abs()
    return diff.mean().item(), diff.max().item()


def within_tolerance(mean, max_):
    """Whether a path's ``(mean, max)`` difference to fp32 meets :data:`TOLERANCE`."""
    return mean <= TOLERANCE['mean'] and max_ <= TOLERANCE['max']


def timed_calls(fn, x, repeats):
    """Seconds of ``1 + repeats`` calls ``fn(x)`` (the first is the warm-up) and the first call's output."""
    seconds, out = [], None
    for _ in range(1 + repeats):
        if x.device.type == 'cuda':
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        y = fn(x)
        if x.device.type == 'cuda':
            torch.cuda.synchronize(x.device)
        seconds.append(time.perf_counter() - start)
        out = y if out is None else out
    return seconds, out


def fastest_path(net, probe, repeats=1):
    """The fastest path of ``net`` on ``probe`` whose output meets :data:`TOLERANCE` (``--precision auto``).

    Args:
        net (nn.Module): the network in fp32, on ``probe``'s device; not changed (paths run on copies).
        probe (Tensor): ``(1, 3, h, w)`` float32 in [0, 1], e.g. a 48 x 48 crop of the first image.
        repeats (int): timed calls per path after one warm-up call; the fewest seconds count.

    Returns:
        ``((precision, channels_last), rows)``: the chosen path and, per path tried, a dict with ``path``,
        ``seconds``, ``mean_diff``, ``max_diff`` (in 1/255 units) and ``ok``.
    """
    reference = None
    rows = []
    for precision, channels_last in supported_paths(probe.device):
        candidate = PreparedNet(copy.deepcopy(net), precision, channels_last)
        seconds, out = timed_calls(candidate, probe, repeats)
        reference = out if reference is None else reference  # the first path is fp32 eager
        mean, max_ = output_difference(reference, out)
        rows.append({'path': (precision, channels_last), 'seconds': min(seconds[1:]), 'mean_diff': mean * 255,
                     'max_diff': max_ * 255, 'ok': within_tolerance(mean, max_)})
        del candidate
    best = min((r for r in rows if r['ok']), key=lambda r: r['seconds'])
    return best['path'], rows


__all__ = ['PRECISIONS', 'TOLERANCE', 'bf16_supported', 'unsupported_reason', 'supported_paths', 'path_name',
           'PreparedNet', 'output_difference', 'within_tolerance', 'timed_calls', 'fastest_path']
