"""Adaptive parameter preservation (SRTTA): keep the parameters most important to the source model at their
source values during test-time adaptation.

Importance is the diagonal Fisher information of a GT-free loss, estimated on the LR images:

    F_i = mean_n (d L_aug(theta; X_n) / d theta_i)^2,

    L_aug(theta; X) = Charbonnier(M_theta(X), sg[(1/8) sum_{k=0..7} T_k^-1(M_theta(T_k(X)))]),

T_k the 8 flips / transposes of the image (T_0 the identity), ``sg`` stop-gradient, and
Charbonnier(a, b) = mean(sqrt((a - b)^2 + eps)). Per parameter tensor the ``int(numel * ratio)`` entries
of largest F form the mask m (the official code's ``topk``); after every optimizer step the masked entries
are restored:  theta <- m * theta_source + (1 - m) * theta.
"""
import torch

from tta_sr.options.stage2 import CHARBONNIER_EPS  # noqa: F401 (re-exported; the option's one default)


def charbonnier(pred, target, eps=CHARBONNIER_EPS):
    """mean(sqrt((pred - target)^2 + eps)), any shapes that broadcast."""
    return torch.sqrt((pred - target) ** 2 + eps).mean()


def dihedral(x, k):
    """T_k of (B, C, H, W), k in 0..7: bit 0 flips W, bit 1 flips H, bit 2 transposes H and W (last)."""
    if k & 1:
        x = x.flip(3)
    if k & 2:
        x = x.flip(2)
    return x.transpose(2, 3) if k & 4 else x


def undo_dihedral(x, k):
    """T_k^-1 of (B, C, H, W): the inverse of :func:`dihedral` (transpose first, then the flips)."""
    if k & 4:
        x = x.transpose(2, 3)
    if k & 2:
        x = x.flip(2)
    return x.flip(3) if k & 1 else x


def augmentation_consistency_loss(net, lq, eps=CHARBONNIER_EPS):
    """L_aug of the module docstring for LR ``lq`` (B, 3, h, w): M(lq) with gradient against the detached mean
    of the 8 un-transformed outputs T_k^-1(M(T_k(lq))) (the identity's included); a scalar."""
    out = net(lq)
    with torch.no_grad():
        others = [undo_dihedral(net(dihedral(lq, k)), k) for k in range(1, 8)]
        pseudo = (out.detach() + sum(others)) / 8
    return charbonnier(out, pseudo, eps)


class FisherRestoration:
    """Fisher mask over the trainable parameters of ``net`` and restoration to their source values.

    ``FisherRestoration(net, ratio)`` copies the current values of the parameters with ``requires_grad``
    (the source); ``estimate(loss_fn, batches)`` builds the masks; ``restore()`` (after each optimizer
    step) writes the source values back into the masked entries. Gradients for the estimate go through
    ``torch.autograd.grad``: parameters' ``.grad`` and any optimizer state are left untouched.
    """

    def __init__(self, net, ratio):
        if not 0 <= ratio <= 1:
            raise ValueError(f'fisher ratio must be in [0, 1], got {ratio}')
        self.net, self.ratio = net, ratio
        self.params = {n: p for n, p in net.named_parameters() if p.requires_grad}
        self.source = {n: p.detach().clone() for n, p in self.params.items()}
        self.masks = {}

    def estimate(self, loss_fn, batches):
        """F = mean over ``batches`` of the squared gradients of ``loss_fn(net, batch)``; masks: the top
        ``int(numel * ratio)`` entries of F per tensor. Returns the Fisher values {name: tensor}."""
        names, params = list(self.params), list(self.params.values())
        fisher = [torch.zeros_like(p) for p in params]
        count = 0
        for batch in batches:
            grads = torch.autograd.grad(loss_fn(self.net, batch), params, allow_unused=True)
            for f, g in zip(fisher, grads):
                if g is not None:
                    f.add_(g.detach() ** 2)
            count += 1
        if count == 0:
            raise ValueError('FisherRestoration.estimate: no batch to estimate the Fisher information on')
        self.masks = {}
        for name, f in zip(names, fisher):
            f /= count
            k = int(f.numel() * self.ratio)
            mask = torch.zeros(f.numel(), dtype=torch.bool, device=f.device)
            mask[torch.topk(f.flatten(), k).indices] = True
            self.masks[name] = mask.view_as(f)
        return dict(zip(names, fisher))

    @torch.no_grad()
    def restore(self):
        """theta <- m * theta_source + (1 - m) * theta for every trainable tensor (in place)."""
        for name, mask in self.masks.items():
            param = self.params[name]
            param.copy_(torch.where(mask, self.source[name], param))

    def restored_fraction(self):
        """Fraction of the trainable entries that :meth:`restore` resets."""
        total = sum(m.numel() for m in self.masks.values())
        return sum(int(m.sum()) for m in self.masks.values()) / max(total, 1)

    def state_dict(self):
        return {'ratio': self.ratio, 'source': dict(self.source), 'masks': dict(self.masks)}

    def load_state_dict(self, state):
        missing = set(self.params) - set(state['source'])
        if missing:
            raise KeyError(f'FisherRestoration state lacks the trainable parameters {sorted(missing)[:5]}...')
        self.ratio = state['ratio']
        self.source = {n: state['source'][n].to(self.params[n]) for n in self.params}
        self.masks = {n: m.to(self.params[n].device) for n, m in state['masks'].items() if n in self.params}
