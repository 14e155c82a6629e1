import tta_sr  # noqa: F401
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from tta_sr.archs import far_encoder_arch as fe


def _frozen(enc):
    return not any(p.requires_grad for p in enc.parameters()) and not enc.training


def test_lpips_backbone_encoder_offline_default():
    enc = ARCH_REGISTRY.get('LPIPSBackboneEncoder')()
    y = torch.rand(2, 3, 64, 64, requires_grad=True)
    out = enc(y)
    assert out.shape[:2] == (2, enc.out_channels) and enc.out_channels == 192
    assert out.shape[-1] == 15  # ~H/4
    assert _frozen(enc)
    enc.train()
    assert not enc.training  # stays in eval mode
    out.mean().backward()
    assert y.grad is not None  # gradients flow to the input


def test_lpips_backbone_encoder_missing_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match='alex_missing.pth'):
        fe.LPIPSBackboneEncoder(weights_path=str(tmp_path / 'alex_missing.pth'))


@pytest.mark.parametrize('stage,channels,size', [('stem', 64, 8), ('layer2', 512, 4)])
def test_clip_encoder_random_init_shapes(stage, channels, size):
    enc = fe.CLIPEncoder(stage=stage, pretrained=None)
    out = enc(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, channels, size, size) and enc.out_channels == channels
    assert _frozen(enc)


def test_clip_encoder_missing_weights_names_file(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError) as err:
        fe.CLIPEncoder()
    msg = str(err.value)
    assert 'RN50.pt' in msg and 'weights_path' in msg and 'openai' in msg
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        fe.CLIPEncoder(weights_path=str(tmp_path / 'nope.pt'))


def test_vgg_encoder_from_local_file(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    feats = make_layers(cfgs['E'])[:4]
    path = tmp_path / 'vgg19_part.pth'
    torch.save({f'features.{k}': v for k, v in feats.state_dict().items()}, path)
    enc = fe.VGGFeatureEncoder(layer='relu1_2', weights_path=str(path))
    assert torch.equal(enc.features[2].weight, feats[2].weight)
    out = enc(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 64, 16, 16) and enc.out_channels == 64 and _frozen(enc)
    with pytest.raises(RuntimeError, match='vgg19'):
        fe.VGGFeatureEncoder(layer='relu2_1', weights_path=str(path))  # file lacks conv2_1


def test_vgg_encoder_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth'):
        fe.VGGFeatureEncoder()


def test_sr_trunk_encoder_random_init():
    enc = fe.SRTrunkEncoder(weights=None, num_block=1, downscale=2)
    out = enc(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 64, 16, 16) and enc.out_channels == 64 and _frozen(enc)


def test_sr_trunk_encoder_missing_weights(tmp_path, monkeypatch):
    resolver = pytest.importorskip('tta_sr.weights.resolver')
    monkeypatch.setenv(getattr(resolver, 'ENV_VAR', 'TTA_SR_WEIGHTS'), str(tmp_path))
    monkeypatch.setattr(resolver, 'cache_dir', lambda: str(tmp_path))
    monkeypatch.setattr(resolver, 'convert_entry', lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError('no ncnn')))
    with pytest.raises(FileNotFoundError, match='RealESRGAN_x4plus'):
        fe.SRTrunkEncoder()
