"""One-line errors for problems a user fixes outside the code: a path, an image file, a weights file, a folder
that cannot be written, an option file that does not parse. ``tta-sr`` and ``tta_sr/train.py`` run inside :func:`user_errors`, so these end the
program with ``<prog>: error: <Type>: <message>`` on stderr and exit status 1 instead of a traceback; any
other exception (a bug) keeps its traceback. Exit statuses (``docs/bad_input.md``): 0 done, 1 such an
input/output problem, 2 a wrong command line (argparse's convention).
"""
import contextlib

INPUT_ERROR = 1
USAGE_ERROR = 2


class UserInputError(Exception):
    """A problem the user fixes outside the code (an unreadable image, a corrupt weights file): the base class
    that domain errors such as ``ImageReadError`` and ``WeightsIntegrityError`` add to their own."""


def user_error_types():
    """The exception classes that :func:`user_errors` reports in one line."""
    import yaml
    # OSError: missing paths, permissions, read-only disks; YAMLError: an option file that does not parse
    return UserInputError, OSError, yaml.YAMLError


def one_line(prog, err):
    """``'<prog>: error: <Type>: <message>'`` on a single line."""
    text = ' '.join(str(err).split())
    return f'{prog}: error: {type(err).__name__}: {text}'


@contextlib.contextmanager
def user_errors(prog):
    """Turn the exceptions of :func:`user_error_types` raised inside the block into ``SystemExit`` (status 1)."""
    try:
        yield
    except user_error_types() as err:
        raise SystemExit(one_line(prog, err)) from None
