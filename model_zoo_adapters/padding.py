"""Pad an image batch to a multiple of a block size and crop the network output back.

Window-attention and stride-2 networks need ``H`` and ``W`` divisible by a block size ``m``. We pad
by mirroring the image at its bottom/right border (the flip includes the border pixel, i.e.
``x[H-1], x[H-1], x[H-2], ...``), run the net, and keep the top-left ``s*H x s*W`` of the output.
"""
import torch


def _mirror_extend(x: torch.Tensor, amount: int, dim: int) -> torch.Tensor:
    """Append ``amount`` mirrored rows/columns along ``dim`` (repeating the flip when ``amount`` > size)."""
    if amount <= 0:
        return x
    pieces, have = [x], 0
    flipped = torch.flip(x, [dim])
    while have < amount:
        take = min(amount - have, x.shape[dim])
        pieces.append(flipped.narrow(dim, 0, take))
        have += take
        flipped = torch.flip(flipped, [dim])  # mirror back for very small inputs
    return torch.cat(pieces, dim)


def pad_to_multiple(x: torch.Tensor, multiple: int, extra_block: bool = False):
    """``(B, C, H, W) -> ((B, C, H', W'), (H, W))`` with ``H'``, ``W'`` multiples of ``multiple``.

    ``extra_block=False``: the next multiple (no padding when already divisible). ``extra_block=True``:
    ``(H // multiple + 1) * multiple``, i.e. always at least one more row/column, as the official
    SwinIR and FeMaSR test scripts do (outputs then match theirs exactly).
    """
    h, w = x.shape[-2:]
    if extra_block:
        pad_h, pad_w = multiple - h % multiple, multiple - w % multiple
    else:
        pad_h, pad_w = (-h) % multiple, (-w) % multiple
    x = _mirror_extend(x, pad_h, x.dim() - 2)
    x = _mirror_extend(x, pad_w, x.dim() - 1)
    return x, (h, w)


def crop_to(y: torch.Tensor, size, scale: int) -> torch.Tensor:
    """Keep the top-left ``(scale*H, scale*W)`` of ``y`` for the original input ``size = (H, W)``."""
    h, w = size
    return y[..., :h * scale, :w * scale]
