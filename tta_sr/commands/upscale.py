"""``tta-sr upscale -i FILE_OR_DIR -o DIR``: super-resolve photos with a published or an adapted model.

Used like Real-ESRGAN's ``inference_realesrgan.py -n RealESRGAN_x4plus -i inputs -o results --tile 256
--outscale 3.5``. The model is ``-n NAME`` (an arch and weights of ``tta_sr/weights/manifest.yml``) or
``--arch-yaml FILE`` (``import_modules``, ``scale``, ``network_g`` and ``path.pretrain_network_g`` of a
BasicSR option file, e.g. the one ``tta-sr adapt`` wrote); ``--weights FILE`` replaces the weights with a
tta_sr / BasicSR checkpoint (``params_ema`` when present, else ``params``, unless ``--param-key``) or a
published file.

Each image is read with ``read_image`` (EXIF orientation applied), run tile by tile (``--tile`` LR pixels,
``--tile-overlap`` of blended context; ``tta_sr.utils.tiling``), resized with OpenCV's LANCZOS4 to
``outscale x`` the input size when ``--outscale`` differs from the model's scale, and written as
``<stem>_<suffix>.<ext>`` in the input's form: gray stays gray, an alpha channel is kept (upsampled
bicubically) and 16-bit PNG / TIFF stay 16-bit. ``--ext auto`` keeps the input's format, except that
alpha needs PNG (so does a format that cannot be written, e.g. PPM); a 16-bit gray + alpha image comes
out as 16-bit RGBA (no writer here stores 16-bit gray + alpha). Unreadable files in a folder are skipped
with a warning.

``--precision`` picks the arithmetic (``tta_sr.utils.inference_precision``): fp32; bf16 (autocast, on CPUs with
bf16 instructions or GPUs); fp16 (GPU: the net cast to half, also ``--half``); auto (times every path this device
supports on a 48 x 48 crop of the first image and keeps the fastest within 0.5/255 mean and 2/255 max of fp32).
``--channels-last`` stores weights and tiles as NHWC. A bar per image counts its tiles, with the ETA.

After ``tta-sr adapt``, a person who has looked at the report can choose another point than the selector did:
``--strength A`` runs the weight-space blend theta_0 + A (theta - theta_0) of the source weights theta_0 (``-n``'s
published file, or ``path.source_network_g`` / ``pretrain_network_g`` of ``--arch-yaml``, or ``--source-weights``)
and the adapted ``--weights`` theta (the run's ``models/net_g_adapted_latest.pth``), like Real-ESRGAN's ``-dn``;
``--project [STEPS]`` projects every tile's output onto its LR (``tta_sr.ops.back_projection``, antialiased bicubic,
as many steps as ``gate.projection_steps`` by default).
"""
import argparse
import os
import sys

import numpy as np
import yaml

from tta_sr.commands.common import fail, input_images, usage, writable_folder
from tta_sr.options.stage2 import DEFAULT_TILE, DEFAULT_TILE_OVERLAP, GATE
from tta_sr.utils.inference_precision import PRECISIONS, path_name, unsupported_reason

PROG = 'tta-sr upscale'
WRITABLE = ('png', 'jpg', 'jpeg', 'bmp', 'tif', 'tiff', 'webp')
DEEP = ('png', 'tif', 'tiff')  # 16-bit output
# Defaults, from `python benchmarks/upscale_speed.py --size 256 --tile 256 --repeats 2 --threads 2` on this project's
# 2-core CPU (docs/benchmarks.md): fp32 + channels_last is 1.17x (x4plus) and 1.11x (compact) faster than fp32 and
# identical to it; bf16 is faster (up to 2.8x) but differs by up to 14.5/255 on one pixel (the bar: 2/255).
CPU_PRECISION = 'fp32'  # without --precision / --half / --fp32: this on CPU, fp16 on GPU
CHANNELS_LAST = True  # on CPU, without --channels-last / --no-channels-last (measured on CPU only)
PROBE = 48  # side of the crop --precision auto times the paths on


def add_parser(subparsers):
    p = subparsers.add_parser('upscale', help='super-resolve a photo or a folder with a published or adapted model',
                              description=__doc__.split('\n\n', 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('-i', '--input', required=True, metavar='FILE_OR_DIR', help='an image or a folder of images')
    p.add_argument('-o', '--output', default='results', metavar='DIR', help='output folder (default: %(default)s)')
    p.add_argument('-n', '--model', help='manifest name (default: RealESRGAN_x4plus unless --arch-yaml)')
    p.add_argument('--arch-yaml', metavar='FILE', help='option file giving import_modules, scale, network_g and '
                                                        'path.pretrain_network_g (e.g. the file tta-sr adapt wrote)')
    p.add_argument('--weights', metavar='FILE', help='weights for that arch: a tta_sr checkpoint or a published file')
    p.add_argument('--param-key', help='key of the state dict in the weights file (default: params_ema, else params, '
                                       'else the whole file)')
    p.add_argument('-t', '--tile', type=int, default=DEFAULT_TILE, help='tile size in LR pixels, 0 = whole image at once '
                                                               '(default: %(default)s)')
    p.add_argument('--tile-overlap', type=int, default=DEFAULT_TILE_OVERLAP, help='blended context around each tile, LR pixels '
                                                                '(default: %(default)s)')
    p.add_argument('-s', '--outscale', type=float, help='final upscaling factor (default: the model\'s)')
    p.add_argument('--suffix', default='out', help='output name <stem>_<suffix>.<ext>; empty: <stem>.<ext> '
                                                   '(default: %(default)s)')
    p.add_argument('--ext', default='auto', choices=('auto', 'png', 'jpg'), help='output format (default: auto, '
                                                                                 'as the input)')
    precision = p.add_mutually_exclusive_group()
    precision.add_argument('--precision', choices=('auto',) + PRECISIONS,
                           help=f'auto, fp32, bf16 (CPUs with bf16 instructions, GPUs) or fp16 (GPU); default: '
                                f'{CPU_PRECISION} on CPU, fp16 on GPU')
    precision.add_argument('--fp32', action='store_true', help='the same as --precision fp32')
    precision.add_argument('--half', action='store_true', help='the same as --precision fp16 (GPU only)')
    p.add_argument('--channels-last', action=argparse.BooleanOptionalAction, default=None,
                   help=f'weights and tiles in NHWC layout (default: {"on" if CHANNELS_LAST else "off"} on CPU, off on GPU; '
                        '--precision auto picks it)')
    p.add_argument('--strength', type=float, metavar='A', help='blend the source and the adapted --weights: '
                   'theta_0 + A (theta - theta_0); 0 is the source model, 1 the adapted one')
    p.add_argument('--source-weights', metavar='FILE', help='the source weights of --strength (default: -n\'s '
                   'published file, or the source of --arch-yaml)')
    steps = GATE.default('projection_steps')
    p.add_argument('--project', type=int, nargs='?', const=steps, default=0, metavar='STEPS',
                   help=f'project each output onto its LR: STEPS (default {steps}, gate.projection_steps) '
                        'back-projection steps S <- S + U(X - D(S))')
    p.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N (default: %(default)s)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(run=run, command_parser=p)
    return p


def manifest_scale(args):
    """The scale of ``-n`` (default RealESRGAN_x4plus) in the manifest; an unknown name ends with the usage."""
    from tta_sr.weights.resolver import manifest_entry
    try:
        return manifest_entry(args.model or 'RealESRGAN_x4plus')['scale']
    except KeyError as err:
        usage(args, err.args[0])


def build_model(args, device, weights=None, param_key=None):
    """``(net, scale, description)``: the net in eval mode on ``device`` and its upscaling factor; ``weights`` /
    ``param_key`` (None: ``--weights`` / ``--param-key``; ``weights=False``: the model's own) replace its weights."""
    from tta_sr.weights.resolver import build_pretrained
    weights, param_key = (args.weights, args.param_key) if weights is None else (weights or None, param_key)
    if args.arch_yaml:
        from basicsr.archs import build_network
        from tta_sr.models.model_base import load_weights_into
        opt = arch_options(args)
        path_opt = opt.get('path') or {}
        chosen = weights or path_opt.get('pretrain_network_g')
        if not chosen:
            fail(PROG, f'no weights: pass --weights or set path.pretrain_network_g in {args.arch_yaml}')
        key = param_key if weights else (param_key or path_opt.get('param_key_g'))
        net = build_network(dict(opt['network_g']))
        load_weights_into(net, chosen, param_key=key)
        return net.to(device).eval(), int(opt['scale']), f'{opt["network_g"]["type"]} ({chosen})'
    name, scale = args.model or 'RealESRGAN_x4plus', manifest_scale(args)
    if weights:
        net = build_pretrained(name, device, explicit_path=weights, param_key=param_key)
    else:
        net = build_pretrained(name, device)
    return net, int(scale), f'{name} ({weights or "published weights"})'


def arch_options(args):
    """The option dict of ``--arch-yaml`` (its modules imported); a file that is not one ends the command."""
    from tta_sr.utils.launch import import_user_modules, read_options
    try:
        opt = read_options(args.arch_yaml)
    except (ValueError, yaml.YAMLError) as err:  # not a mapping / not YAML
        fail(PROG, f'cannot read --arch-yaml {args.arch_yaml!r}: {" ".join(str(err).split())}')
    missing = [k for k in ('network_g', 'scale') if not opt.get(k)]
    if missing:
        fail(PROG, f'--arch-yaml {args.arch_yaml!r} has no {" or ".join(missing)}')
    import_user_modules(args.arch_yaml)
    return opt


def source_model(args, device):
    """The source model of ``--strength``: ``--source-weights``, else the source of ``--arch-yaml``, else ``-n``'s
    published weights."""
    if args.source_weights:
        return build_model(args, device, args.source_weights)[0]
    if args.arch_yaml:
        path_opt = arch_options(args).get('path') or {}
        source = path_opt.get('source_network_g') or path_opt.get('pretrain_network_g')
        if not source:
            fail(PROG, f'--strength: no source weights; pass --source-weights or set path.pretrain_network_g in '
                       f'{args.arch_yaml}')
        return build_model(args, device, source, path_opt.get('source_param_key_g') or path_opt.get('param_key_g'))[0]
    return build_model(args, device, weights=False)[0]


def blended_model(args, device):
    """``build_model``'s triple, with ``--strength``: theta_0 + A (theta - theta_0) of the source and the adapted
    weights (see the module docstring)."""
    import torch
    from tta_sr.models.candidates import blend_state
    net, scale, description = build_model(args, device)
    if args.strength is None:
        return net, scale, description
    source = source_model(args, device)
    try:
        state = blend_state(source.state_dict(), net.state_dict(), args.strength)
    except (KeyError, RuntimeError) as err:
        fail(PROG, f'--strength: the source and the adapted weights do not match ({err})')
    with torch.no_grad():
        net.load_state_dict(state)
    return net, scale, f'{description}, strength {args.strength:g} from the source'


def output_form(path, ext_option):
    """``(channels, bit_depth, ext)`` of the output of the input file at ``path`` (module docstring)."""
    from tta_sr.utils.image_io import image_format
    channels, depth = image_format(path)
    ext = os.path.splitext(path)[1].lower().lstrip('.') if ext_option == 'auto' else ext_option
    if ext not in WRITABLE or (channels in (2, 4) and ext in ('jpg', 'jpeg', 'bmp')):
        ext = 'png'
    depth = depth if ext in DEEP else 8
    if channels == 2 and depth == 16:
        channels = 4
    return channels, depth, ext


def in_form(out, channels):
    """``(H, W, 3 | 4)`` RGB(A) float32 -> ``(H, W, channels)``: gray by OpenCV's RGB-to-gray weights for 1 and 2."""
    if channels not in (1, 2):
        return out
    import cv2
    gray = cv2.cvtColor(np.ascontiguousarray(out[..., :3]), cv2.COLOR_RGB2GRAY)[..., None]
    return gray if channels == 1 else np.concatenate([gray, out[..., 3:]], axis=2)


def upscale_file(net, scale, path, args, device, progress=None):
    """The upscaled image of the file at ``path``: float32 ``(H', W', C)`` in [0, 1], C = the input's form (3 or 4
    before :func:`in_form`), ``H' = outscale * H`` (truncated, at least 1) when ``--outscale`` is set.
    ``progress``: see ``tiled_forward``."""
    import cv2
    from tta_sr.utils.image_io import read_image
    from tta_sr.utils.tiling import upscale_image
    rgb, alpha = read_image(path)
    img = rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=2)
    del rgb, alpha
    out = upscale_image(net, img, scale, args.tile, args.tile_overlap, device, progress=progress)
    if args.outscale and args.outscale != scale:
        size = (max(1, int(img.shape[1] * args.outscale)), max(1, int(img.shape[0] * args.outscale)))
        out = cv2.resize(out, size, interpolation=cv2.INTER_LANCZOS4)
        if out.ndim == 2:
            out = out[..., None]
    return out


def plan_outputs(paths, args):
    """``[(input, output path, channels, bit_depth)]``; two inputs with one output name, or an output that
    would overwrite its input, end the command."""
    plan, seen = [], {}
    for path in paths:
        channels, depth, ext = output_form(path, args.ext)
        stem = os.path.splitext(os.path.basename(path))[0]
        target = os.path.join(args.output, f'{stem}_{args.suffix}.{ext}' if args.suffix else f'{stem}.{ext}')
        key = os.path.abspath(target)
        if key == os.path.abspath(path):
            fail(PROG, f'{target!r} would overwrite its input; set --suffix or another -o')
        if key in seen:
            fail(PROG, f'{seen[key]!r} and {path!r} would both be written to {target!r}; rename one or use --ext auto')
        seen[key] = path
        plan.append((path, target, channels, depth))
    return plan


def choose_device(args):
    """``(torch.device, precision)`` from ``--device``, ``--precision``, ``--half`` and ``--fp32`` (precision: one of
    ``PRECISIONS`` or ``'auto'``); a precision asked for that the device cannot run ends with the usage, as do
    wrong devices."""
    import torch
    name = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    try:
        device = torch.device(name)
    except RuntimeError as err:
        usage(args, f'--device {args.device!r}: {err}')
    if device.type == 'cuda' and not torch.cuda.is_available():
        usage(args, f'--device {args.device}, but no CUDA device is available here')
    asked = args.precision or ('fp32' if args.fp32 else 'fp16' if args.half else None)
    precision = asked or ('fp16' if device.type == 'cuda' else CPU_PRECISION)
    reason = None if precision == 'auto' else unsupported_reason(precision, device)
    if reason and asked:
        usage(args, f'{"--half" if args.half else "--precision " + precision} {reason}')
    return device, 'fp32' if reason else precision  # a default this device cannot run falls back to fp32


def check_options(args):
    """End with the usage (status 2) on a wrong option value, or with status 1 when ``--arch-yaml`` is missing."""
    if args.tile < 0 or args.tile_overlap < 0 or (args.tile and args.tile_overlap >= args.tile):
        usage(args, f'--tile {args.tile} / --tile-overlap {args.tile_overlap}: need tile >= 0, overlap >= 0 and '
                    'overlap < tile')
    if args.strength is not None and not args.weights:
        usage(args, '--strength needs --weights: the adapted weights (a run\'s models/net_g_adapted_latest.pth)')
    if args.strength is not None and not 0 <= args.strength <= 1:
        usage(args, f'--strength must be in [0, 1], got {args.strength}')
    if args.project < 0:
        usage(args, f'--project needs a number of steps >= 0, got {args.project}')
    if args.outscale is not None and args.outscale <= 0:
        usage(args, f'--outscale must be positive, got {args.outscale}')
    if args.arch_yaml and args.model:
        usage(args, 'give either -n/--model or --arch-yaml, not both')
    if args.arch_yaml and not os.path.isfile(args.arch_yaml):
        fail(PROG, f'--arch-yaml {args.arch_yaml!r} does not exist')
    if not args.arch_yaml:
        manifest_scale(args)


def auto_path(net, path, device):
    """``--precision auto``: ``(precision, channels_last)`` of the fastest path within tolerance on a ``PROBE``-pixel
    centre crop of the image at ``path`` (``fastest_path``); the paths' times and differences go to stderr."""
    from tta_sr.data.crop_budget import centre_box, crop
    from tta_sr.utils.image_io import read_image, to_tensor
    from tta_sr.utils.inference_precision import fastest_path
    rgb = read_image(path)[0]
    chosen, rows = fastest_path(net, to_tensor(crop(rgb, centre_box(*rgb.shape[:2], PROBE)), device))
    for row in rows:
        print(f'--precision auto: {path_name(*row["path"]):<22} {row["seconds"]:.3f} s, difference to fp32 mean '
              f'{row["mean_diff"]:.3f}/255, max {row["max_diff"]:.2f}/255{"" if row["ok"] else " (too large)"}',
              file=sys.stderr)
    return chosen


def tile_progress(bar):
    """``tiled_forward``'s ``progress(done, total)`` drawn on the tqdm ``bar``: ``(0, total)`` restarts it."""
    def progress(done, total):
        if done == 0:
            bar.reset(total=total)
        else:
            bar.update(done - bar.n)
    return progress


def run(args):
    import torch
    from tqdm import tqdm
    from tta_sr.utils.image_io import write_image
    from tta_sr.utils.inference_precision import PreparedNet
    check_options(args)
    device, precision = choose_device(args)
    paths = input_images(args.input, PROG)
    plan = plan_outputs(paths, args)
    writable_folder(args.output, PROG)
    net, scale, description = blended_model(args, device)
    channels_last = (CHANNELS_LAST and device.type == 'cpu') if args.channels_last is None else args.channels_last
    if precision == 'auto':
        precision, channels_last = auto_path(net, plan[0][0], device)
    net = PreparedNet(net, precision, channels_last)
    if args.project:
        from tta_sr.ops.back_projection import BackProjected
        net = BackProjected(net, scale, args.project)
        description += f', projected onto the LR ({args.project} steps)'

    written = []
    with torch.no_grad():
        for path, target, channels, depth in tqdm(plan, desc='upscale', unit='img', file=sys.stderr,
                                                  disable=args.no_progress):
            with tqdm(desc=os.path.basename(path), unit='tile', file=sys.stderr, disable=args.no_progress) as bar:
                out = upscale_file(net, scale, path, args, device, progress=tile_progress(bar))
            out = in_form(out, channels)
            written.append(write_image(target, out, bit_depth=depth))
            del out
    factor = f'x{args.outscale:g}' if args.outscale else f'x{scale}'
    print(f'upscaled {len(written)} image(s) {factor} with {description} in {path_name(precision, channels_last)} '
          f'into {args.output}/')
    return 0
