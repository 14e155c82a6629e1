"""Tiled super-resolution inference with bounded memory and seamless blending.

The LR image is cut into a grid of *cores* of ``tile x tile`` pixels. Each core is run through the
network together with ``overlap`` pixels of context on every side (clipped at the image border),
so a tile's input is at most ``(tile + 2 overlap)^2``. Neighbouring outputs are blended with linear
ramps of width ``overlap`` (LR pixels, i.e. ``scale * overlap`` output pixels) centred on the core
boundary. Along one axis, tile ``i`` with core ``[c0, c1)`` has weight

    w_i(u) = clip((u - s (c0 - h) + 1/2) / (2 s h), 0, 1) * clip((s (c1 + h) - u - 1/2) / (2 s h), 0, 1),   h = overlap // 2

(no ramp on a side that lies on the image border), the 2-D weight is the product of the two axes,
and the ramps of two neighbours sum to one, so the output is the weighted mean
``y = sum_i w_i y_i / sum_i w_i``. Every output pixel that gets a non-zero weight lies at least
``h`` LR pixels inside its tile's input, so for a convolutional network whose receptive-field
radius is at most ``overlap // 2`` (LR pixels) the tiled result equals the untiled one up to float
rounding; for networks with wider or global context the ramps hide the seams.

Memory: besides the input and the output (``3 s^2 H W`` floats), only one tile's activations and
two 1-D weight vectors exist at a time; the network runs under ``torch.no_grad``.
"""
import numpy as np
import torch

from tta_sr.options.stage2 import DEFAULT_TILE, DEFAULT_TILE_OVERLAP
from tta_sr.utils.image_io import to_tensor


def _cores(length, tile):
    """Core intervals ``[(c0, c1), ...]`` covering ``[0, length)`` in steps of ``tile``."""
    return [(c0, min(c0 + tile, length)) for c0 in range(0, length, tile)]


def _axis_weight(c0, c1, length, half, scale, out_start, out_stop):
    """1-D blending weight (float32, ``out_stop - out_start``) of a tile with core ``[c0, c1)``."""
    u = np.arange(out_start, out_stop, dtype=np.float64) + 0.5
    w = np.ones_like(u)
    if half > 0:
        width = 2.0 * half * scale
        if c0 > 0:
            w *= np.clip((u - scale * (c0 - half)) / width, 0.0, 1.0)
        if c1 < length:
            w *= np.clip((scale * (c1 + half) - u) / width, 0.0, 1.0)
    return torch.from_numpy(w.astype(np.float32))


def _check_output(out, lr_shape, scale, what):
    expected = (lr_shape[0], out.shape[1], lr_shape[2] * scale, lr_shape[3] * scale)
    if out.dim() != 4 or tuple(out.shape[2:]) != expected[2:]:
        raise ValueError(f'tiled_forward: the network turned {what} {tuple(lr_shape)} into {tuple(out.shape)}, '
                         f'expected spatial size x{scale} {expected[2:]}; check `scale` (and pad the input if the '
                         'network needs sizes divisible by a window size)')


def tiled_forward(net, lr, scale, tile=DEFAULT_TILE, overlap=DEFAULT_TILE_OVERLAP, progress=None):
    """Run ``net`` on ``lr`` tile by tile and blend the tiles.

    Args:
        net (callable): maps ``(1, C, h, w)`` to ``(1, C', scale h, scale w)``.
        lr (Tensor): ``(1, 3, H, W)`` (any batch size works) on the network's device.
        scale (int): upscaling factor of ``net``.
        tile (int): core size in LR pixels; ``0`` (or a tile covering the image) runs ``net`` once.
        overlap (int): context on each side of a core in LR pixels; blending ramps are ``overlap``
            wide, exact for receptive-field radius <= ``overlap // 2``. Must be < ``tile``.
        progress (callable | None): ``progress(done, total)`` is called with ``(0, total)`` before the first
            tile and ``(i, total)`` after the ``i``-th of ``total`` tiles (1 for an untiled run), e.g. to
            advance a bar (``tta_sr.commands.upscale.tile_progress``).

    Returns:
        Tensor ``(1, C', scale H, scale W)`` (float32, on ``lr``'s device).
    """
    if lr.dim() != 4:
        raise ValueError(f'tiled_forward: expected lr of shape (B, C, H, W), got {tuple(lr.shape)}')
    tile, overlap, scale = int(tile), int(overlap), int(scale)
    if tile < 0 or overlap < 0:
        raise ValueError(f'tiled_forward: tile and overlap must be >= 0, got tile={tile}, overlap={overlap}')
    _, _, height, width = lr.shape
    report = progress or (lambda done, total: None)
    with torch.no_grad():  # not inference_mode: callers may use the result in autograd later
        if tile == 0 or (height <= tile and width <= tile):
            report(0, 1)
            out = net(lr)
            _check_output(out, lr.shape, scale, 'the image')
            report(1, 1)
            return out.float()
        if overlap >= tile:
            raise ValueError(f'tiled_forward: overlap ({overlap}) must be smaller than tile ({tile})')
        half = overlap // 2
        rows, cols = _cores(height, tile), _cores(width, tile)
        total, done = len(rows) * len(cols), 0
        report(0, total)
        out = None
        norm_y = torch.zeros(scale * height)
        norm_x = torch.zeros(scale * width)
        for r0, r1 in rows:
            for c0, c1 in cols:
                # input window: core plus `overlap` context, clipped to the image
                iy0, iy1 = max(0, r0 - overlap), min(height, r1 + overlap)
                ix0, ix1 = max(0, c0 - overlap), min(width, c1 + overlap)
                piece = net(lr[:, :, iy0:iy1, ix0:ix1])
                _check_output(piece, lr[:, :, iy0:iy1, ix0:ix1].shape, scale, 'a tile')
                if out is None:
                    out = torch.zeros(lr.shape[0], piece.shape[1], scale * height, scale * width,
                                      dtype=torch.float32, device=lr.device)
                # contribution region: core extended by `half` (clipped), in output pixels
                oy0, oy1 = scale * max(0, r0 - half), scale * min(height, r1 + half)
                ox0, ox1 = scale * max(0, c0 - half), scale * min(width, c1 + half)
                wy = _axis_weight(r0, r1, height, half, scale, oy0, oy1)
                wx = _axis_weight(c0, c1, width, half, scale, ox0, ox1)
                part = piece[:, :, oy0 - scale * iy0:oy1 - scale * iy0, ox0 - scale * ix0:ox1 - scale * ix0]
                weight = (wy[:, None] * wx[None, :]).to(lr.device)
                out[:, :, oy0:oy1, ox0:ox1] += part.float() * weight
                if c0 == 0:
                    norm_y[oy0:oy1] += wy
                if r0 == 0:
                    norm_x[ox0:ox1] += wx
                del piece, part, weight
                done += 1
                report(done, total)
        # the grid is a product of row and column intervals, so sum_i w_i = (sum_r wy_r)(sum_c wx_c)
        out /= norm_y.to(lr.device)[:, None]  # two broadcast divisions: no (sH, sW) temporary
        out /= norm_x.to(lr.device)[None, :]
        return out


def upscale_image(net, img, scale, tile=DEFAULT_TILE, overlap=DEFAULT_TILE_OVERLAP, device='cpu', alpha_mode='bicubic',
                  progress=None):
    """Super-resolve a numpy image, handling an alpha channel like Real-ESRGAN's inference.

    Args:
        net (callable): SR network on ``device`` mapping ``(1, 3, h, w)`` in [0, 1] to ``(1, 3, s h, s w)``, e.g.
            an ``nn.Module`` or a ``tta_sr.utils.inference_precision.PreparedNet`` (bf16, channels-last).
        img (np.ndarray): float32 ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA in [0, 1].
        scale (int): the network's factor.
        tile, overlap, progress: see ``tiled_forward`` (``progress`` restarts from 0 for the alpha pass of
            ``alpha_mode='net'``).
        device (str | torch.device): where the tensors go.
        alpha_mode (str): for RGBA input, ``'bicubic'`` upsamples alpha with OpenCV bicubic
            interpolation; ``'net'`` runs alpha (replicated to 3 channels) through the network and
            keeps the channel mean. Alpha is clipped to [0, 1] and appended as the 4th channel.

    Returns:
        np.ndarray float32 ``(s H, s W, C)`` in [0, 1], ``C`` as in the input.
    """
    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f'upscale_image: expected (H, W, 3) or (H, W, 4) in [0, 1], got shape {img.shape}')
    device = torch.device(device)

    def run(rgb):
        x = to_tensor(rgb, device)
        y = tiled_forward(net, x, scale, tile=tile, overlap=overlap, progress=progress)
        return y[0].clamp_(0, 1).permute(1, 2, 0).cpu().numpy()  # in place: the output is the largest array

    rgb = run(img[..., :3])
    if img.shape[2] == 3:
        return rgb
    alpha = img[..., 3]
    if alpha_mode == 'bicubic':
        import cv2
        up = cv2.resize(alpha, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
    elif alpha_mode == 'net':
        up = run(np.repeat(alpha[..., None], 3, axis=2)).mean(axis=2)
    else:
        raise ValueError(f"upscale_image: alpha_mode must be 'bicubic' or 'net', got {alpha_mode!r}")
    return np.concatenate([rgb, np.clip(up, 0, 1)[..., None].astype(np.float32)], axis=2)


__all__ = ['tiled_forward', 'upscale_image']
