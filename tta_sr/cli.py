"""Command line ``tta-sr``: dispatches to one module per subcommand in ``tta_sr/commands/``.

- ``tta-sr adapt PHOTOS_DIR``: adapt a model to a folder of photos (``tta_sr.commands.adapt``);
- ``tta-sr upscale -i FILE_OR_DIR -o DIR``: super-resolve with a published or adapted model (``...upscale``);
- ``tta-sr evaluate --sr DIR [--gt DIR] [--lr DIR]``: score a folder of SR results (``...evaluate``);
- ``tta-sr metrics``: list the metrics and whether they work on this machine.

Exit status: 0 done; 1 a problem with an input or output path, an image or a weights file (one line on
stderr, ``tta_sr.utils.errors``); 2 a wrong command line (argparse). The cases: ``docs/bad_input.md``.
"""
import argparse
import sys

from tta_sr.commands import adapt, evaluate, upscale


def build_parser():
    parser = argparse.ArgumentParser(prog='tta-sr', description='tta_sr: test-time adaptation of real-world SR models')
    sub = parser.add_subparsers(dest='command', required=True)
    for command in (adapt, upscale, evaluate):
        command.add_parser(sub)
    metrics = sub.add_parser('metrics', help='list the metrics, their direction and whether they work on this machine')
    metrics.set_defaults(run=list_metrics)
    return parser


def list_metrics(args):
    from tta_sr.metrics import available_metrics
    for name, reason in available_metrics(with_reasons=True).items():
        print(f'{name:8s} {"ok" if reason is None else "unavailable: " + reason}')
    return 0


def main(argv=None):
    """Entry point of the ``tta-sr`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    import tta_sr  # noqa: F401  (compat alias before basicsr)
    from tta_sr.utils.errors import user_errors
    with user_errors(f'tta-sr {args.command}'):
        return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
