"""Speed and accuracy of the inference paths of ``tta-sr upscale`` on CPU, to choose ``--precision``'s default.

For each model of ``--models`` (built with ``build_pretrained(name, device='cpu')``) and each path of ``--paths``,
one LR image (``--size`` x ``--size``: a centre crop of the first photo of ``--image-dir``, default the AIM2020
RealSR x4 test LR set in shared/data, else a synthetic photo) is upscaled with ``tiled_forward`` (``--tile``,
``--tile-overlap``) once to warm up and ``--repeats`` times more. Recorded per path: LR megapixels per second
(best run), seconds of the first (warm-up, compile or export included) and of the best run, and the mean / max
absolute difference to the fp32 eager output on [0, 1] outputs, x 255, against the bar of
``tta_sr.utils.inference_precision.TOLERANCE`` (0.5 mean, 2 max). Paths:

* ``fp32``, ``fp32-cl``, ``bf16``, ``bf16-cl``: ``PreparedNet`` (eager; ``-cl`` = channels_last; bf16 = autocast),
  bf16 skipped where the CPU has no bf16 instructions;
* ``compile``, ``compile-bf16-cl``: ``torch.compile`` (inductor, needs a C++ compiler) of the fp32 net, run fp32 /
  bf16 autocast + channels_last; the first run includes compiling (a tiny net took 27 s cold, 3.5 s cached);
  not in the default ``--paths``;
* ``onnxruntime``: the fp32 net exported to ONNX (``torch.onnx.export``, TorchScript exporter, dynamic H and W;
  needs ``pip install onnx onnxruntime``) and run by ONNX Runtime's CPU provider with ``--threads`` threads.

A path that cannot run here is recorded with its reason. Writes ``<out>/upscale_speed.json`` and
``<out>/upscale_speed.md`` (one table). Quick check (compact model, seconds)::

    python benchmarks/upscale_speed.py --models realesr-animevideov3 --size 32 --repeats 1 --out /tmp/speed

The full table (both models, 256 x 256, one 256 tile; roughly 10 to 20 minutes on 2 idle cores: RealESRGAN x4plus
takes about 13 s a 256 tile in fp32, and compiling it adds minutes)::

    python benchmarks/upscale_speed.py --paths all --size 256 --tile 256 --repeats 3 --out benchmarks/runs/upscale_speed
"""
import argparse
import copy
import glob
import os
import statistics
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from datasets import DATA_ROOT  # noqa: E402
from records import dump_json, machine_info  # noqa: E402
from tta_sr.options.stage2 import DEFAULT_TILE_OVERLAP  # noqa: E402
from tta_sr.utils.inference_precision import (  # noqa: E402
    BF16_CPU_FLAGS, TOLERANCE, PreparedNet, bf16_supported, cpu_flags, output_difference, timed_calls,
    unsupported_reason, within_tolerance)

MODELS = ('RealESRGAN_x4plus', 'realesr-animevideov3')
IMAGE_DIR = os.path.join(DATA_ROOT, 'AIM2020_RealSR_x4_testLR')
EAGER = {'fp32': ('fp32', False), 'fp32-cl': ('fp32', True), 'bf16': ('bf16', False), 'bf16-cl': ('bf16', True)}
COMPILED = {'compile': ('fp32', False), 'compile-bf16-cl': ('bf16', True)}
ALL_PATHS = (*EAGER, *COMPILED, 'onnxruntime')
DEFAULT_PATHS = (*EAGER, 'onnxruntime')


def lr_image(size, image_dir):
    """``(1, 3, size, size)`` float32 in [0, 1]: the centre crop of the first image of ``image_dir`` (resized up
    when smaller), else of ``upscale_memory.synthetic_photo``; and where it came from."""
    import cv2
    from tta_sr.utils.image_io import read_image, to_tensor
    files = sorted(glob.glob(os.path.join(image_dir, '*.png')))
    if files:
        img, source = read_image(files[0])[0], files[0]
    else:
        from upscale_memory import synthetic_photo
        img, source = synthetic_photo(2 * size, 2 * size), 'synthetic (upscale_memory.synthetic_photo)'
    if min(img.shape[:2]) < size:
        factor = size / min(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * factor), round(img.shape[0] * factor)),
                         interpolation=cv2.INTER_CUBIC)
    y0, x0 = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return to_tensor(img[y0:y0 + size, x0:x0 + size], 'cpu'), f'{source}, centre {size} x {size}'


def onnx_runner(net, example, threads):
    """``(B, 3, h, w)`` float32 tensor -> float32 tensor through ONNX Runtime, of ``net`` exported at ``example``."""
    import onnxruntime
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # the TorchScript exporter: no onnxscript needed
        path = os.path.join(folder, 'net.onnx')
        torch.onnx.export(net, (example,), path, dynamo=False, input_names=['lr'], output_names=['sr'],
                          dynamic_axes={'lr': {2: 'h', 3: 'w'}, 'sr': {2: 'H', 3: 'W'}}, opset_version=17)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    return lambda x: torch.from_numpy(session.run(None, {'lr': x.contiguous().numpy()})[0])


def failure(err):
    """One line (300 characters at most) saying why a path failed: ``'<Error>: <message>'``."""
    return f'{type(err).__name__}: {" ".join(str(err).split())[:300]}'


def runner(path, net, example, threads):
    """The callable that runs ``net`` (fp32, not changed) on ``path``, or a string: why it cannot run here."""
    precision = (EAGER.get(path) or COMPILED.get(path) or ('fp32',))[0]
    reason = unsupported_reason(precision, 'cpu')
    if reason:
        return f'{precision} {reason}'
    net = copy.deepcopy(net)
    try:
        if path in EAGER:
            return PreparedNet(net, *EAGER[path])
        if path in COMPILED:
            return PreparedNet(torch.compile(net), *COMPILED[path])
        return onnx_runner(net, example, threads)
    except Exception as err:  # an optional backend that is missing or fails here is a result, not a crash
        return failure(err)


def measure(fn, lr, scale, args, reference):
    """One path's row: seconds of the warm-up and the timed runs of ``tiled_forward``, MP/s, difference to
    ``reference`` (x 255; None: this is the reference); returns ``(row, output)``."""
    from tta_sr.utils.tiling import tiled_forward
    try:
        seconds, out = timed_calls(lambda x: tiled_forward(fn, x, scale, args.tile, args.tile_overlap), lr,
                                   args.repeats)
    except Exception as err:  # e.g. a compile that fails on its first call
        return {'skipped': failure(err)}, None
    best = min(seconds[1:])
    mean, max_ = output_difference(out if reference is None else reference, out)
    return {'megapixels_per_s': lr.shape[2] * lr.shape[3] / 1e6 / best, 'best_s': best,
            'median_s': statistics.median(seconds[1:]), 'first_s': seconds[0], 'mean_diff_255': mean * 255,
            'max_diff_255': max_ * 255, 'within_tolerance': within_tolerance(mean, max_)}, out


def markdown(results):
    """The results as one Markdown table (model, path, speed, speed-up over fp32, differences)."""
    lines = ['| model | path | LR MP/s | speed-up | best s | first s | mean diff /255 | max diff /255 | within bar |',
             '|---|---|---|---|---|---|---|---|---|']
    for model, rows in results['models'].items():
        base = rows.get('fp32', {}).get('megapixels_per_s')
        for path, row in rows.items():
            if 'skipped' in row:
                lines.append(f'| {model} | {path} | skipped: {row["skipped"]} ||||||| ')
                continue
            speedup = f'{row["megapixels_per_s"] / base:.2f}x' if base else ''
            lines.append(f'| {model} | {path} | {row["megapixels_per_s"]:.4f} | {speedup} | {row["best_s"]:.3f} | '
                         f'{row["first_s"]:.3f} | {row["mean_diff_255"]:.3f} | {row["max_diff_255"]:.2f} | '
                         f'{"yes" if row["within_tolerance"] else "no"} |')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', default=','.join(MODELS), help='manifest names (default: %(default)s)')
    parser.add_argument('--paths', default=','.join(DEFAULT_PATHS),
                        help=f'comma-separated, of {", ".join(ALL_PATHS)}, or all (default: %(default)s)')
    parser.add_argument('--size', type=int, default=256, help='side of the LR crop (default: %(default)s)')
    parser.add_argument('--tile', type=int, default=256, help='tile size, LR pixels; 0: whole (default: %(default)s)')
    parser.add_argument('--tile-overlap', type=int, default=DEFAULT_TILE_OVERLAP)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(), help='torch and ONNX Runtime threads '
                                                                                    '(default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=3, help='timed runs after the warm-up (default: %(default)s)')
    parser.add_argument('--image-dir', default=IMAGE_DIR, help='photos; the first one is cropped (default: shared '
                                                               'AIM2020 RealSR x4 test LR)')
    parser.add_argument('--out', default='benchmarks/runs/upscale_speed', help='folder for the JSON and Markdown')
    args = parser.parse_args(argv)
    paths = ALL_PATHS if args.paths == 'all' else tuple(args.paths.split(','))
    unknown = set(paths) - set(ALL_PATHS)
    if unknown or args.repeats < 1:
        parser.error(f'unknown --paths {sorted(unknown)}' if unknown else '--repeats must be >= 1')
    paths = ('fp32',) + tuple(p for p in paths if p != 'fp32')  # first: the reference of every difference

    import tta_sr  # noqa: F401  (before basicsr)
    from tqdm import tqdm
    from tta_sr.weights.resolver import build_pretrained, manifest_entry
    torch.set_num_threads(args.threads)
    lr, source = lr_image(args.size, args.image_dir)
    results = {'command': ' '.join(['python'] + sys.argv), 'image': source, 'settings': vars(args),
               'tolerance_255': {k: v * 255 for k, v in TOLERANCE.items()},
               'cpu': {'capability': torch.backends.cpu.get_cpu_capability(), 'bf16_supported': bf16_supported('cpu'),
                       'bf16_flags': sorted(cpu_flags() & set(BF16_CPU_FLAGS))},
               'machine': machine_info({'device': 'cpu'}), 'models': {}}
    jobs = [(m, p) for m in args.models.split(',') for p in paths]
    bar = tqdm(jobs, desc='upscale_speed', unit='path', file=sys.stderr)
    for model in args.models.split(','):
        net, scale = build_pretrained(model, device='cpu'), manifest_entry(model)['scale']
        rows, reference = results['models'].setdefault(model, {}), None
        for path in paths:
            bar.set_postfix_str(f'{model} {path}')
            fn = runner(path, net, lr, args.threads)
            if isinstance(fn, str):
                rows[path] = {'skipped': fn}
            else:
                rows[path], out = measure(fn, lr, scale, args, reference)
                reference = out if reference is None else reference
            del fn
            bar.update()
            tqdm.write(f'{model:22} {path:16} ' + (f'skipped: {rows[path]["skipped"]}' if 'skipped' in rows[path] else
                       f'{rows[path]["megapixels_per_s"]:.4f} MP/s, mean diff {rows[path]["mean_diff_255"]:.3f}/255, '
                       f'max {rows[path]["max_diff_255"]:.2f}/255'), file=sys.stderr)
        del net
    bar.close()
    os.makedirs(args.out, exist_ok=True)
    dump_json(os.path.join(args.out, 'upscale_speed.json'), results)
    table = markdown(results)
    with open(os.path.join(args.out, 'upscale_speed.md'), 'w') as f:
        f.write(f'{results["command"]}\n\nImage: {source}; tile {args.tile}, {args.threads} thread(s); difference to '
                f'fp32 eager on [0, 1] outputs x 255 (bar: mean <= 0.5, max <= 2).\n\n{table}')
    print(table)
    return results


if __name__ == '__main__':
    main()
