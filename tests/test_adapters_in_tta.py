"""Every model-zoo adapter, at tiny widths, adapted by one HRAwareTTAModel step; RealESRGAN+ by name."""
import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)

from tta_sr.data.lr_image_dataset import LRImageDataset
from tta_sr.weights.resolver import build_pretrained
from tta_helpers import build_tta_model, lr_batch, make_branch_checkpoint, tta_opt, write_photos

TINY_ADAPTERS = {
    'BSRGANNet': {'type': 'BSRGANNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1,
                  'num_grow_ch': 4, 'scale': 4},
    'SwinIRGAN': {'type': 'SwinIRGAN', 'variant': 'medium', 'embed_dim': 12, 'depths': [2], 'num_heads': [2],
                  'window_size': 4, 'img_size': 16},
    'FeMaSRNet': {'type': 'FeMaSRNet', 'gt_resolution': 64, 'codebook_params': [[8, 16, 32]],
                  'channel_query_dict': {8: 32, 16: 32, 32: 32, 64: 32},
                  'swin_opts': {'input_resolution': [8, 8], 'blk_depth': 2, 'num_heads': 2, 'window_size': 4,
                                'num_blocks': 1},
                  'LQ_stage': True, 'norm_type': 'gn', 'act_type': 'silu', 'scale_factor': 4},
    'SRVGGNetCompact': {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2,
                        'upscale': 4, 'act_type': 'prelu'},
}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('adapters')
    write_photos(root / 'lr', 3, 24)
    return {'lr': root / 'lr', 'branch': make_branch_checkpoint(root / 'branch.pth')}


@pytest.mark.parametrize('arch', sorted(TINY_ADAPTERS))
def test_one_tta_step_changes_only_trainable_parameters(arch, tmp_path, data):
    opt = tta_opt(tmp_path, data['lr'], data['branch'], trainable={'fraction': 0.5})
    opt['network_g'] = dict(TINY_ADAPTERS[arch])
    model = build_tta_model(opt)
    frozen = [model.net_recon, model.far_encoder, model.cri_far]
    frozen_before = [{k: v.clone() for k, v in m.state_dict().items()} for m in frozen]
    before = {k: v.clone() for k, v in model.net_g.named_parameters()}
    trainable = {k for k, p in model.net_g.named_parameters() if p.requires_grad}
    assert 0 < len(trainable) < len(before)
    model.feed_data(lr_batch(LRImageDataset(opt['datasets']['train'])))
    model.optimize_parameters(1)
    after = dict(model.net_g.named_parameters())
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= trainable
    for module, state in zip(frozen, frozen_before):
        assert all(torch.equal(v, module.state_dict()[k]) for k, v in state.items())
    assert model.output.shape[-1] == 4 * model.lq.shape[-1]


@pytest.mark.slow
def test_realesrgan_by_manifest_name_equals_the_converted_network(tmp_path, data, monkeypatch):
    """Full-size RealESRGAN x4plus loaded by name into HRAwareTTAModel == the converter's network."""
    monkeypatch.setenv('TTA_SR_WEIGHTS', str(tmp_path / 'weights'))
    opt = tta_opt(tmp_path, data['lr'], data['branch'])
    opt['network_g'] = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 23,
                        'num_grow_ch': 32, 'scale': 4}
    opt['path']['pretrain_network_g'] = 'RealESRGAN_x4plus'
    model = build_tta_model(opt)
    reference = build_pretrained('RealESRGAN_x4plus')
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.net_g.eval()(x), reference(x))
