"""``tta-sr adapt PHOTOS_DIR``: adapt an SR model to a folder of photos with BasicSR's training pipeline.

1. builds the full option file from the shipped templates (``tta_sr.commands.adapt_options``) and writes it
   to ``<out>/<name>.yml`` before anything runs;
2. runs ``python tta_sr/train.py -opt <out>/<name>.yml`` (the YAML route, in a child process) into
   ``<out>/<name>/``, with a progress bar (iteration, loss, ETA); BasicSR's log goes to that folder;
3. prints where the adapted weights, the upscaled photos and ``report.html`` are, and, when the run's
   ``metrics.json`` holds the selector's decision (``"gate": {"decision": "adapted" | "source", "chosen": ...,
   "reason": ...}``), what was handed back, and how to upscale with another point (``--strength``, ``--project``).

The same file repeats (or, edited, changes) the run: ``python tta_sr/train.py -opt <out>/<name>.yml``; the
previous run folder is then renamed ``<name>_archived_<time>`` by BasicSR.
"""
import argparse
import copy
import json
import os
import subprocess
import sys

import yaml

from tta_sr.commands.common import fail, input_images, usage, writable_folder

PROG = 'tta-sr adapt'
TRAIN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'train.py')


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text}')
    return value


def add_parser(subparsers):
    p = subparsers.add_parser(
        'adapt', help='adapt a model to a folder of photos (writes its BasicSR option file, then runs it)',
        description=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('photos', metavar='PHOTOS_DIR', help='folder of low-resolution photos (no ground truth needed)')
    p.add_argument('-n', '--model', default='RealESRGAN_x4plus',
                   help='a model with templates options/tta/<mode>_<model>.yml (default: %(default)s)')
    p.add_argument('--arch-yaml', metavar='FILE',
                   help='YAML laid over the template: your own registered arch (import_modules, scale, network_g) '
                        'and its weights (path.pretrain_network_g)')
    p.add_argument('--mode', help='any <mode> of options/tta/<mode>_<model>.yml (default: hr_aware)')
    p.add_argument('--iters', type=positive_int, help='training iterations (default: the preset\'s)')
    p.add_argument('--preset', choices=('cpu', 'gpu'),
                   help='cpu: the quickstart\'s CPU-scale crops, batch and iterations; gpu: the template as it is '
                        '(default: gpu when a CUDA device is used, else cpu)')
    p.add_argument('--per-image', action='store_true', help='adapt one copy of the model per photo')
    p.add_argument('--gt', metavar='DIR', help='ground-truth folder, only for scoring the report')
    p.add_argument('--export', action='store_true',
                   help='also upscale every whole photo with the source and the adapted model (results/base, '
                        'results/adapted); without it the report judges one crop of each photo and the photos are '
                        'upscaled afterwards with tta-sr upscale')
    p.add_argument('-o', '--out', default='experiments', metavar='DIR',
                   help='output folder: <DIR>/<name>.yml and the run <DIR>/<name>/ (default: %(default)s)')
    p.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'), help='default: %(default)s')
    p.set_defaults(run=run, command_parser=p)
    return p


def choose_template(args):
    """``(mode, template path)`` for ``--model`` / ``--mode``; a wrong value ends with the usage (status 2)."""
    from tta_sr.commands.adapt_options import TEMPLATE_DIR, templates
    found = templates()
    if args.model not in found:
        usage(args, f'no template {TEMPLATE_DIR}/<mode>_{args.model}.yml for --model {args.model!r}; '
                    f'models with templates: {", ".join(sorted(found))}')
    modes = found[args.model]
    mode = args.mode or ('hr_aware' if 'hr_aware' in modes else sorted(modes)[0])
    if mode not in modes:
        usage(args, f'--mode {mode!r} is not offered for {args.model}; choose from {", ".join(sorted(modes))} '
                    f'(the templates {TEMPLATE_DIR}/<mode>_{args.model}.yml)')
    return mode, modes[mode]


def gate_line(run_dir):
    """``'handed back <candidate> (<reason>)'`` / ``'kept the source model: <reason>'`` from the run's
    ``metrics.json`` ``gate`` entry (the selector's decision), or ``None`` when the run has none."""
    try:
        with open(os.path.join(run_dir, 'metrics.json')) as f:
            gate = json.load(f).get('gate')
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(gate, dict):
        return None
    if gate.get('decision') == 'source':
        return f'kept the source model: {gate.get("reason") or "no reason recorded"}'
    if gate.get('decision') == 'adapted':
        return gate.get('summary') or 'handed back the adapted model'
    return None


def shown(path):
    """``path`` relative to the current folder when it lies inside it, else absolute (for printing)."""
    relative = os.path.relpath(path)
    return path if relative.startswith('..') else relative


def summary_lines(option_file, run_dirs, upscale_model_args, exported=True):
    """The end-of-run lines: weights, images (when ``exported``), report, the selector's decision, how to repeat
    and how to upscale.

    ``run_dirs``: ``[run folder]``, or ``{stem: run folder}`` for a per-image run.
    """
    per_image = isinstance(run_dirs, dict)
    dirs = run_dirs if per_image else {None: run_dirs[0]}
    pattern = shown(next(iter(dirs.values())))
    if per_image:
        stem = next(iter(dirs))
        pattern = pattern[:len(pattern) - len(stem)] + '<stem>'
    lines = []
    if per_image:
        lines.append(f'per-image runs:  {pattern}/ for {", ".join(dirs)} ({len(dirs)})')
    weights = os.path.join(pattern, 'models', 'net_g_latest.pth')
    lines.append(f'adapted weights: {weights}')
    if exported:
        lines.append(f'upscaled images: {os.path.join(pattern, "results", "adapted")}/ '
                     f'(the model before adaptation: {os.path.join(pattern, "results", "base")}/)')
    lines.append(f'report:          {os.path.join(pattern, "report.html")}' +
                 ('' if exported else ' (one crop of each photo; --export for whole photos)'))
    for stem, folder in dirs.items():
        decision = gate_line(folder)
        if decision:
            lines.append(f'{stem}: {decision}' if per_image else decision)
    lines += [f'repeat or edit:  python {shown(TRAIN_PY)} -opt {shown(option_file)}',
              f'upscale photos:  tta-sr upscale -i PHOTOS -o OUT {upscale_model_args} --weights {weights}']
    if any(gate_line(folder) for folder in dirs.values()):
        adapted = os.path.join(pattern, 'models', 'net_g_adapted_latest.pth')
        lines.append(f'other points:    tta-sr upscale -i PHOTOS -o OUT {upscale_model_args} --weights {adapted} '
                     '--strength A [--project] (A in [0, 1]: the blends the report plots)')
    return lines


def check_weights(opt):
    """Find (or convert, once) the source model's weights now, so that a missing file fails before the run."""
    from tta_sr.weights.resolver import resolve_weights
    name = (opt.get('path') or {}).get('pretrain_network_g')
    if name:
        resolve_weights(name)


def plan(opt, photos):
    """What the run will do, before it starts: ``(lines, pixels)``, the lines on its training budget, checks and
    outputs (photo sizes read from the file headers) and the LR pixels its SR network will process (a training
    step's backward pass counted as two forward passes), for :func:`estimate_line`."""
    from PIL import Image
    from tta_sr.data.crop_budget import budget_crops
    from tta_sr.options.stage2 import resolve_stage2
    opt = resolve_stage2(copy.deepcopy(opt))
    sizes = []
    for path in photos:
        with Image.open(path) as img:
            sizes.append(img.size)
    total = sum(w * h for w, h in sizes)
    largest = max(sizes, key=lambda s: s[0] * s[1])
    train, data = opt['train'], opt['datasets']['train']
    lines = [f'photos:          {len(photos)}, {total / 1e6:.2f} LR megapixels in all (largest {largest[0]} x '
             f'{largest[1]})']
    if opt.get('model_type') == 'SRTTAModel':
        steps = train['iterations_per_image']
        lines.append(f'training:        each whole photo in turn, {steps} steps each; every photo is upscaled before '
                     'and after (results/base, results/adapted)')
        return lines, len(photos) * steps * train['patch_batch'] * train['patch_size'] ** 2 * 3 + 2 * total
    val_freq = (opt.get('val') or {}).get('val_freq')
    validating = bool(val_freq) and 'val' in opt['datasets']
    lines.append(f'training:        {train["total_iter"]} iterations of {data["batch_size_per_gpu"]} random '
                 f'{data["lq_size"]} x {data["lq_size"]} LR crops'
                 + (f', a validation every {val_freq} iterations' if validating else ''))
    pixels = train['total_iter'] * data['batch_size_per_gpu'] * data['lq_size'] ** 2 * 3
    gate = opt['gate']
    if gate['enabled']:
        crops = budget_crops({p: (h, w) for p, (w, h) in zip(photos, sizes)}, gate['crop_size'],
                             gate['crops_per_image'], gate['max_crops'], opt['manual_seed'])
        weights = 1 + (train['total_iter'] // val_freq if validating and gate['checkpoints'] else 0) + 1 + \
            len([a for a in gate['alphas'] if 0 < a < 1])
        crop_pixels = sum(h * w for _, (_, _, h, w) in crops)
        source_pass = gate['reference'] == 'noise_matched' or gate['max_noise_matched_loss_db'] is not None
        noise_matched = source_pass and gate['reference'] != 'noise_matched'  # a second input one scale down
        # each weights upscales every X_d (and X_d'); the noise-matched input costs one source pass over the crops X
        pixels += (1 + noise_matched) * weights * crop_pixels // opt['scale'] ** 2 + source_pass * crop_pixels
        lines.append(f'selection:       at most {weights * (1 + len(gate["projection"]))} candidates ({weights} '
                     f'weights, each also with {len(gate["projection"])} projection(s)), judged at the end on at '
                     f'most {len(crops)} LR crops of at most {gate["crop_size"]} x {gate["crop_size"]}, each '
                     f'downscaled x{opt["scale"]} and upscaled once per weights'
                     + (' (twice with the noise-matched check)' if noise_matched else ''))
    if opt['eval']['export']:
        pixels += 2 * total
        lines.append(f'outputs:         every whole photo upscaled twice ({opt["scale"] ** 2 * total / 1e6:.1f} output '
                     'megapixels each time): results/base at the start, results/adapted at the end')
    else:
        side = opt['eval']['crop_size']
        pixels += 2 * sum(min(w, side) * min(h, side) for w, h in sizes)
        lines.append('outputs:         the report, on one crop of each photo (whole photos: tta-sr upscale afterwards, '
                     'or --export)')
    return lines, pixels


def estimate_line(opt, pixels):
    """``'estimate: ...'`` from one forward pass of ``network_g`` timed here (random weights, 64 x 64 LR, best of 3)
    times ``pixels``: the SR network's share of the run; the branch and the metrics add to it. None on a GPU run."""
    import time
    import torch
    if opt.get('num_gpu') != 0 and torch.cuda.is_available():
        return None
    from basicsr.archs import build_network
    net, lr, best = build_network(copy.deepcopy(opt['network_g'])).eval(), torch.rand(1, 3, 64, 64), float('inf')
    with torch.no_grad():
        for _ in range(3):
            start = time.perf_counter()
            net(lr)
            best = min(best, time.perf_counter() - start)
    seconds = best / 64 ** 2 * pixels
    return (f'estimate:        about {seconds / 60:.0f} min of SR-network time on this CPU ({pixels / 1e6:.1f} LR '
            'megapixels through the network; the branch, the metrics and the file reads add to it)')


def header_lines(args, template, preset, option_file):
    """The comment lines at the top of the option file: where it came from and how to run it again."""
    settings = [f'preset {preset}'] + [f'--{k.replace("_", "-")} {v}' for k, v in
                                       (('arch_yaml', args.arch_yaml), ('gt', args.gt), ('iters', args.iters),
                                        ('device', args.device)) if v and v != 'auto']
    return [f'Written by `tta-sr adapt {args.photos}` from {template}',
            f'with {", ".join(settings + (["--per-image"] if args.per_image else []))}.',
            f'Repeat or edit the run: python tta_sr/train.py -opt {option_file}']


def run(args):
    import torch
    from tta_sr.commands.adapt_options import adapt_options, write_options
    from tta_sr.options.schema import OptionError
    from tta_sr.utils.launch import import_user_modules

    mode, template = choose_template(args)
    if args.device == 'cuda' and not torch.cuda.is_available():
        usage(args, '--device cuda, but no CUDA device is available here')
    preset = args.preset or ('gpu' if args.device != 'cpu' and torch.cuda.is_available() else 'cpu')
    if not os.path.isdir(args.photos):
        fail(PROG, f'photos folder {args.photos!r} ' + ('is a file; give a folder' if os.path.exists(args.photos)
                                                         else 'does not exist'))
    photos = input_images(args.photos, PROG)
    if args.gt:
        input_images(args.gt, PROG)
    if args.arch_yaml and not os.path.isfile(args.arch_yaml):
        fail(PROG, f'--arch-yaml {args.arch_yaml!r} does not exist')
    out = writable_folder(args.out, PROG)
    try:
        opt = adapt_options(args.photos, template, out, preset, args.arch_yaml, args.gt, args.iters,
                            args.per_image, args.device, args.export)
    except OptionError as err:
        fail(PROG, f'{err} (in the options built from {template}' + (f' and {args.arch_yaml})' if args.arch_yaml
                                                                      else ')'))
    except (ValueError, yaml.YAMLError) as err:  # not a mapping / not YAML
        fail(PROG, f'cannot use --arch-yaml {args.arch_yaml!r}: {" ".join(str(err).split())}')
    check_weights(opt)

    option_file = os.path.join(out, f'{opt["name"]}.yml')
    root = opt['path']['experiments_root']
    write_options(option_file, opt, header_lines(args, template, preset, option_file))
    lines, pixels = plan(opt, photos)
    import_user_modules(option_file)  # a user's own arch, for the timed forward pass
    lines.append(estimate_line(opt, pixels) or 'estimate:        none (the run is on a GPU)')
    print(f'{PROG}: {args.model} ({mode}, preset {preset}) on {len(photos)} photos in {args.photos}\n'
          + '\n'.join(lines) + f'\noptions:         {option_file}', flush=True)
    try:
        code = subprocess.run([sys.executable, TRAIN_PY, '-opt', option_file]).returncode
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if code != 0:
        fail(PROG, f'the run stopped (exit status {code}); its log is in {root}/, its options in {option_file}')
    stems = [os.path.splitext(os.path.basename(p))[0] for p in photos]
    run_dirs = {stem: f'{root}_{stem}' for stem in stems} if args.per_image else [root]
    model_args = f'--arch-yaml {shown(option_file)}' if args.arch_yaml else f'-n {args.model}'
    exported = opt.get('model_type') == 'SRTTAModel' or opt['eval']['export']
    print('\n'.join(summary_lines(option_file, run_dirs, model_args, exported)))
    return 0
