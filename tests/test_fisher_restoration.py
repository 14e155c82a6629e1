"""Tests for tta_sr/models/fisher_restoration.py: the GT-free Fisher loss and the restoration of exactly the
configured fraction of each trainable tensor."""
import pytest
import torch
from torch import nn

import tta_sr  # noqa: F401  (before basicsr)
from basicsr.archs import build_network

from tta_sr.models.fisher_restoration import (FisherRestoration, augmentation_consistency_loss, charbonnier,
                                              dihedral, undo_dihedral)
from tta_helpers import TINY_ARCHS


def _net(seed=0):
    torch.manual_seed(seed)
    return build_network(dict(TINY_ARCHS['SRVGGNetCompact']))


def _lq(seed=1, size=12):
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _shift_all(net, delta=0.01):
    """An 'optimizer step' that changes every entry of every trainable parameter."""
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:
                p.add_(delta)


@pytest.mark.parametrize('k', range(8))
def test_undo_dihedral_inverts_and_the_eight_are_distinct(k):
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    assert torch.equal(undo_dihedral(dihedral(x, k), k), x)
    images = {tuple(dihedral(x[:, :, :4, :4], j).flatten().tolist()) for j in range(8)}
    assert len(images) == 8


def test_augmentation_consistency_loss_matches_its_equation():
    net, lq = _net(), _lq()
    out = net(lq)
    pseudo = torch.stack([undo_dihedral(net(dihedral(lq, k)), k) for k in range(8)]).mean(0)
    expected = torch.sqrt((out - pseudo) ** 2 + 1e-6).mean()
    loss = augmentation_consistency_loss(net, lq, eps=1e-6)
    assert torch.allclose(loss, expected, rtol=1e-5)
    loss.backward()  # the gradient flows through the identity output only, and reaches M
    assert all(p.grad is not None for p in net.parameters())


def test_augmentation_consistency_loss_is_zero_floor_for_an_equivariant_net():
    net = nn.Upsample(scale_factor=2, mode='nearest')  # flip/transpose-equivariant: all 8 outputs agree
    assert augmentation_consistency_loss(net, _lq(), eps=1e-6).item() == pytest.approx(1e-3, rel=1e-4)
    assert charbonnier(torch.zeros(3), torch.zeros(3), eps=4e-6).item() == pytest.approx(2e-3)


@pytest.mark.parametrize('ratio', [0.0, 0.3, 0.5, 1.0])
def test_restores_exactly_the_configured_fraction(ratio):
    net = _net()
    fisher = FisherRestoration(net, ratio)
    fisher.estimate(augmentation_consistency_loss, [_lq(1), _lq(2)])
    source = {n: p.detach().clone() for n, p in net.named_parameters()}
    _shift_all(net)
    stepped = {n: p.detach().clone() for n, p in net.named_parameters()}
    fisher.restore()
    for name, p in net.named_parameters():
        restored = p == source[name]
        assert int(restored.sum()) == int(p.numel() * ratio), name
        assert torch.equal(restored, fisher.masks[name])
        assert torch.equal(p[~restored], stepped[name][~restored])  # untouched entries keep the stepped value
    total = sum(p.numel() for p in net.parameters())
    assert fisher.restored_fraction() == pytest.approx(sum(int(p.numel() * ratio) for p in net.parameters()) / total)


def test_mask_holds_the_largest_fisher_values():
    net = _net()
    fisher = FisherRestoration(net, 0.25)
    values = fisher.estimate(augmentation_consistency_loss, [_lq(3)])
    for name, mask in fisher.masks.items():
        f = values[name]
        if mask.any() and (~mask).any():
            assert f[mask].min() >= f[~mask].max()


def test_frozen_parameters_ignored_and_grads_and_optimizer_untouched():
    net = _net()
    frozen = [n for n, _ in net.named_parameters()][:2]
    for name, p in net.named_parameters():
        p.requires_grad_(name not in frozen)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.1)
    optimizer_state = repr(optimizer.state_dict())
    fisher = FisherRestoration(net, 0.5)
    fisher.estimate(augmentation_consistency_loss, [_lq()])
    assert set(fisher.masks) == {n for n, _ in net.named_parameters()} - set(frozen)
    assert all(p.grad is None for p in net.parameters())
    assert repr(optimizer.state_dict()) == optimizer_state
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in frozen:
                p.add_(0.5)  # changed outside the adaptation: restoration must not touch it
    before = {n: p.detach().clone() for n, p in net.named_parameters() if n in frozen}
    fisher.restore()
    for name, p in net.named_parameters():
        if name in frozen:
            assert torch.equal(p, before[name])


def test_state_dict_round_trip():
    net = _net()
    fisher = FisherRestoration(net, 0.5)
    fisher.estimate(augmentation_consistency_loss, [_lq()])
    other = FisherRestoration(_net(seed=5), 0.1)
    other.load_state_dict(fisher.state_dict())
    assert other.ratio == 0.5
    assert all(torch.equal(other.masks[n], fisher.masks[n]) and torch.equal(other.source[n], fisher.source[n])
               for n in fisher.masks)


def test_rejects_bad_ratio_and_empty_batches():
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        FisherRestoration(_net(), 1.5)
    with pytest.raises(ValueError, match='no batch'):
        FisherRestoration(_net(), 0.5).estimate(augmentation_consistency_loss, [])
