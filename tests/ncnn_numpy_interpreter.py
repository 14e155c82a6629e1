"""A small NumPy interpreter of ncnn graphs, used to check the converter independently.

It parses the ``.param`` text and reads the weights from the ``.bin`` itself (it shares no code with
``tta_sr.weights.ncnn``), then runs the graph on one image ``(C, H, W)`` float32 in float64 NumPy.
Supported layers: Input, Split, Concat, Convolution (+ fused activation), PReLU, Eltwise, BinaryOp,
Interp (nearest / bilinear / bicubic, align_corners False), PixelShuffle.
"""
import numpy as np


def _num(text):
    return float(text) if any(c in text for c in '.eE') else int(text)


def load_graph(param_path):
    """``[(type, name, bottoms, tops, params)]``; array params ``-233xx=n,...`` stored under key ``xx``."""
    with open(param_path) as f:
        lines = f.read().split('\n')
    assert lines[0].strip() == '7767517', f'{param_path}: not an ncnn param file'
    graph = []
    for line in lines[2:]:
        tok = line.split()
        if not tok:
            continue
        nb, nt = int(tok[2]), int(tok[3])
        params = {}
        for kv in tok[4 + nb + nt:]:
            k, v = kv.split('=')
            k = int(k)
            if k < -23299:
                vals = [_num(x) for x in v.split(',')]
                params[-23300 - k] = vals[1:]
            else:
                params[k] = _num(v)
        graph.append((tok[0], tok[1], tok[4:4 + nb], tok[4 + nb:4 + nb + nt], params))
    return graph


def load_weights(bin_path, graph):
    """``{layer_name: [arrays]}`` read sequentially from the .bin (Convolution: fp16-tagged weight, fp32 bias)."""
    raw = np.fromfile(bin_path, dtype=np.uint8)
    offset = 0
    weights = {}
    for ltype, name, _b, _t, p in graph:
        if ltype == 'Convolution':
            tag = int(raw[offset:offset + 4].view('<u4')[0])
            assert tag == 0x01306B47, f'{name}: unexpected storage tag {tag:#x}'
            offset += 4
            count = p[6]
            w = raw[offset:offset + 2 * count].view('<f2').astype(np.float64)
            offset += (2 * count + 3) // 4 * 4
            out_ch, k = p[0], p[1]
            w = w.reshape(out_ch, -1, k, k)
            b = np.zeros(out_ch)
            if p.get(5, 0):
                b = raw[offset:offset + 4 * out_ch].view('<f4').astype(np.float64)
                offset += 4 * out_ch
            weights[name] = [w, b]
        elif ltype == 'PReLU':
            n = p.get(0, 1)
            weights[name] = [raw[offset:offset + 4 * n].view('<f4').astype(np.float64)]
            offset += 4 * n
    assert offset == raw.size, f'{bin_path}: read {offset} of {raw.size} bytes'
    return weights


def conv2d(x, w, b, stride=1, pad=1):
    """``(Cin, H, W) * (Cout, Cin, k, k) -> (Cout, H', W')`` by im2col + matmul, zero padding."""
    cin, h, wd = x.shape
    cout, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    cols = np.empty((cin, k, k, ho, wo))
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride]
    return (w.reshape(cout, -1) @ cols.reshape(-1, ho * wo)).reshape(cout, ho, wo) + b[:, None, None]


def _cubic(t, a=-0.75):
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def _resize_axis(x, out_len, axis, mode):
    """Resample ``x`` along ``axis`` to ``out_len`` samples: src = (dst + 0.5) * in/out - 0.5, edge clamp."""
    n = x.shape[axis]
    scale = n / out_len
    dst = np.arange(out_len)
    if mode == 'nearest':
        idx = np.minimum(np.floor(dst * scale).astype(int), n - 1)
        return np.take(x, idx, axis=axis)
    src = (dst + 0.5) * scale - 0.5
    if mode == 'bilinear':
        src = np.maximum(src, 0)
        i0 = np.floor(src).astype(int)
        t = src - i0
        i0 = np.minimum(i0, n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        shape = [1] * x.ndim
        shape[axis] = out_len
        t = t.reshape(shape)
        return np.take(x, i0, axis=axis) * (1 - t) + np.take(x, i1, axis=axis) * t
    i0 = np.floor(src).astype(int)
    t = src - i0
    out = 0
    shape = [1] * x.ndim
    shape[axis] = out_len
    for m in range(-1, 3):
        idx = np.clip(i0 + m, 0, n - 1)
        out = out + np.take(x, idx, axis=axis) * _cubic(t - m).reshape(shape)
    return out


def _activate(y, p):
    act = p.get(9, 0)
    if act == 0:
        return y
    if act == 1:
        return np.maximum(y, 0)
    if act == 2:
        return np.where(y > 0, y, y * p[10][0])
    raise NotImplementedError(f'activation type {act}')


def run(param_path, bin_path, image):
    """Run the graph on ``image`` ``(C, H, W)``; returns the blob named ``output`` ``(C', H', W')`` float64."""
    graph = load_graph(param_path)
    weights = load_weights(bin_path, graph)
    blobs = {}
    for ltype, name, bottoms, tops, p in graph:
        ins = [blobs[b] for b in bottoms]
        if ltype == 'Input':
            outs = [np.asarray(image, dtype=np.float64)]
        elif ltype == 'Split':
            outs = [ins[0]] * len(tops)
        elif ltype == 'Concat':
            assert p.get(0, 0) == 0
            outs = [np.concatenate(ins, axis=0)]
        elif ltype == 'Convolution':
            assert p.get(3, 1) == 1 and p.get(2, 1) == 1, 'only stride 1, dilation 1'
            w, b = weights[name]
            outs = [_activate(conv2d(ins[0], w, b, pad=p.get(4, 0)), p)]
        elif ltype == 'PReLU':
            slope = weights[name][0]
            slope = np.broadcast_to(slope, (ins[0].shape[0],))[:, None, None]
            outs = [np.where(ins[0] > 0, ins[0], ins[0] * slope)]
        elif ltype == 'Eltwise':
            op, coeffs = p.get(0, 1), p.get(1, [])
            if op == 1:
                coeffs = coeffs or [1.0] * len(ins)
                outs = [sum(c * x for c, x in zip(coeffs, ins))]
            elif op == 0:
                outs = [np.prod(ins, axis=0)]
            else:
                outs = [np.max(ins, axis=0)]
        elif ltype == 'BinaryOp':
            op = p.get(0, 0)
            a, b = ins if len(ins) == 2 else (ins[0], p.get(2, 0.0))
            outs = [{0: np.add, 1: np.subtract, 2: np.multiply, 3: np.divide}[op](a, b)]
        elif ltype == 'Interp':
            mode = {1: 'nearest', 2: 'bilinear', 3: 'bicubic'}[p.get(0, 0)]
            x = ins[0]
            oh, ow = int(x.shape[1] * p[1]), int(x.shape[2] * p[2])
            outs = [_resize_axis(_resize_axis(x, oh, 1, mode), ow, 2, mode)]
        elif ltype == 'PixelShuffle':
            r = p[0]
            c, h, w = ins[0].shape
            y = ins[0].reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2)
            outs = [y.reshape(c // (r * r), h * r, w * r)]
        else:
            raise NotImplementedError(f'ncnn layer type {ltype} ({name})')
        blobs.update(zip(tops, outs))
    return blobs['output']
