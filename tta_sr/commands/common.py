"""What the ``tta-sr`` commands share: one-line errors, the images of a file or a folder, a writable folder.

Exit statuses (``docs/bad_input.md``): ``fail`` exits 1 (the input or the output is the problem);
``usage`` exits 2 with the command's usage, as argparse does for its own checks.
"""
import os
import tempfile


def fail(prog, message):
    """End the command: ``<prog>: error: <message>`` on stderr, exit status 1."""
    raise SystemExit(f'{prog}: error: {message}') from None


def usage(args, message):
    """End the command with its usage and ``message``, exit status 2 (a wrong option value)."""
    args.command_parser.error(message)


def input_images(path, prog):
    """Paths of the readable images given by ``path``: the file itself, or a folder's images (sorted).

    Unreadable files in a folder are skipped with a warning (``scan_images``); a missing path, an empty
    folder, a folder without images, or an unreadable single file end the command (status 1).
    """
    from tta_sr.utils.image_io import ImageReadError, read_image, scan_images
    path = os.fspath(path)
    if not os.path.exists(path):
        fail(prog, f'{path!r} does not exist')
    try:
        if not os.path.isdir(path):
            read_image(path)
            return [path]
        return scan_images(path, on_error='warn')
    except ImageReadError as err:
        fail(prog, f'{err.path!r}: {err.reason}')


def writable_folder(path, prog):
    """Create the folder ``path`` if needed and check that a file can be written in it; returns ``path``."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        fail(prog, f'output folder {path!r} is a file; choose a folder')
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix='.tta_sr_write_test_')
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        fail(prog, f'cannot write to the output folder {path!r} ({err.strerror or err}); '
                   'choose another folder or make it writable')
    return path


__all__ = ['fail', 'usage', 'input_images', 'writable_folder']
