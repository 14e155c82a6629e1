"""Write the files made from the declared options: the option templates (``options/tta/*.yml``) and the quickstart,
from their fragments (``options/fragments/``), and the options tables of ``docs/adaptation.md``, from the schema
(``tta_sr/options/stage2.py``).

    python scripts/generate_options.py           # write every generated file
    python scripts/generate_options.py --check   # exit 1, naming them, if any file is not what its sources give
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tta_sr.commands.adapt_options import generated_option_files  # noqa: E402
from tta_sr.options.stage2 import options_markdown  # noqa: E402
from tta_sr.utils.atomic import atomic_write_text  # noqa: E402

OPTIONS_DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'adaptation.md')
BEGIN, END = '<!-- BEGIN options:', '<!-- END options -->'


def options_doc():
    """``docs/adaptation.md`` with the text between its BEGIN/END options markers made from the schema."""
    with open(OPTIONS_DOC) as f:
        text = f.read()
    start = text.index('\n', text.index(BEGIN)) + 1
    return text[:start] + '\n' + options_markdown() + '\n' + text[text.index(END):]


def generated_files():
    """``{path: text}`` of every generated file."""
    return {**generated_option_files(), OPTIONS_DOC: options_doc()}


def stale_files():
    """Paths whose text on disk is not what their sources give."""
    stale = []
    for path, text in generated_files().items():
        if not os.path.isfile(path) or open(path).read() != text:
            stale.append(path)
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true', help='only check that the files are current')
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f'out of date: {os.path.relpath(path)} (run python scripts/generate_options.py)')
        return 1 if stale else 0
    for path, text in generated_files().items():
        atomic_write_text(path, text)
        print(f'wrote {os.path.relpath(path)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
