"""tta_sr.weights.resolver: manifest, cache lookup, integrity checks, conversion and loading."""
import copy
import hashlib
import os

import pytest
import torch

import tta_sr  # noqa: F401  (before basicsr)
from tta_sr.weights import resolver
from tta_sr.weights.resolver import WeightsIntegrityError, WeightsNotFoundError

COMPACT = 'realesr-animevideov3'
REQUIRED = {'arch', 'arch_kwargs', 'scale', 'url', 'filename', 'sha256', 'param_key'}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('TTA_SR_WEIGHTS', str(tmp_path))
    return tmp_path


@pytest.fixture
def patch_manifest(monkeypatch):
    """Replace the manifest with an edited deep copy: ``patch_manifest(lambda m: ...)``."""
    def apply(edit):
        manifest = copy.deepcopy(resolver.load_manifest())
        edit(manifest)
        monkeypatch.setattr(resolver, 'load_manifest', lambda: manifest)
        return manifest
    return apply


def test_cache_dir_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv('TTA_SR_WEIGHTS', str(tmp_path))
    assert resolver.cache_dir() == str(tmp_path)
    monkeypatch.delenv('TTA_SR_WEIGHTS')
    assert resolver.cache_dir() == os.path.expanduser('~/.cache/tta_sr/weights')


def test_manifest_schema():
    manifest = resolver.load_manifest()
    assert {'RealESRGAN_x4plus', 'RealESRNet_x4plus', 'RealESRGAN_x2plus', COMPACT} <= set(manifest)
    for name, entry in manifest.items():
        assert REQUIRED <= set(entry), name
        assert entry['url'].startswith('https://'), name
        if entry.get('convert_from'):
            conv = entry['convert_from']
            assert {'package', 'model', 'filename', 'sha256'} <= set(conv), name
            assert len(conv['sha256']) == 64, name
    assert manifest['RealESRGAN_x4plus']['param_key'] == 'params_ema'
    assert manifest['RealESRGAN_x2plus']['arch_kwargs']['scale'] == 2
    assert manifest[COMPACT]['arch_kwargs'] == dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16,
                                                    upscale=4, act_type='prelu')


def test_manifest_entry_unknown_name_lists_known():
    with pytest.raises(KeyError, match='RealESRGAN_x4plus'):
        resolver.manifest_entry('no-such-model')


# Published files that no installed package converts: (manifest name, file name, official URL).
PUBLISHED_ONLY = [
    ('RealESRNet_x4plus', 'RealESRNet_x4plus.pth',
     'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.1/RealESRNet_x4plus.pth'),
    ('BSRGAN', 'BSRGAN.pth', 'https://github.com/cszn/KAIR/releases/download/v1.0/BSRGAN.pth'),
    ('SwinIR-M_x4_GAN', '003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth',
     'https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth'),
    ('SwinIR-L_x4_GAN', '003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth',
     'https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth'),
    ('FeMaSR_SRX4', 'FeMaSR_SRX4_model_g.pth',
     'https://github.com/chaofengc/FeMaSR/releases/download/v0.1-pretrain_models/FeMaSR_SRX4_model_g.pth'),
]


@pytest.mark.parametrize('name,filename,url', PUBLISHED_ONLY)
def test_missing_file_message_names_path_url_and_env(name, filename, url, cache):
    with pytest.raises(WeightsNotFoundError) as err:
        resolver.resolve_weights(name)
    msg = str(err.value)
    assert str(cache / filename) in msg
    assert url in msg
    assert 'TTA_SR_WEIGHTS' in msg and 'Download' in msg


def test_missing_package_falls_back_to_not_found(cache, patch_manifest):
    patch_manifest(lambda m: m[COMPACT]['convert_from'].update(package='no_such_pkg_tta_sr'))
    with pytest.raises(WeightsNotFoundError) as err:
        resolver.resolve_weights(COMPACT)
    assert str(cache / 'realesr-animevideov3.pth') in str(err.value)
    assert 'no_such_pkg_tta_sr' in str(err.value)


def test_unknown_name_or_missing_path(cache):
    with pytest.raises(WeightsNotFoundError, match='neither an existing file'):
        resolver.resolve_weights(str(cache / 'nothing.pth'))


def test_explicit_path_honoured(cache, tmp_path):
    explicit = tmp_path / 'mine.pth'
    explicit.write_bytes(b'x')
    (cache / 'RealESRNet_x4plus.pth').write_bytes(b'y')
    assert resolver.resolve_weights('RealESRNet_x4plus', explicit_path=str(explicit)) == str(explicit)
    with pytest.raises(WeightsNotFoundError, match='gone.pth'):
        resolver.resolve_weights('RealESRNet_x4plus', explicit_path=str(tmp_path / 'gone.pth'))


def test_existing_path_as_name(tmp_path):
    f = tmp_path / 'w.pth'
    f.write_bytes(b'x')
    assert resolver.resolve_weights(str(f)) == str(f)


def test_official_file_in_cache_is_used_and_sha_checked(cache, patch_manifest):
    f = cache / 'RealESRNet_x4plus.pth'
    f.write_bytes(b'official bytes')
    assert resolver.resolve_weights('RealESRNet_x4plus') == str(f)  # sha256 null -> not verified
    good = hashlib.sha256(b'official bytes').hexdigest()
    patch_manifest(lambda m: m['RealESRNet_x4plus'].update(sha256=good))
    assert resolver.resolve_weights('RealESRNet_x4plus') == str(f)
    f.write_bytes(b'tampered bytes')
    with pytest.raises(WeightsIntegrityError) as err:
        resolver.resolve_weights('RealESRNet_x4plus')
    msg = str(err.value)
    assert str(f) in msg and good in msg and hashlib.sha256(b'tampered bytes').hexdigest() in msg


def test_converted_file_sha_mismatch_detected(cache):
    entry = resolver.manifest_entry(COMPACT)
    f = cache / entry['convert_from']['filename']
    f.write_bytes(b'not the converted weights')
    with pytest.raises(WeightsIntegrityError) as err:
        resolver.resolve_weights(COMPACT)
    assert str(f) in str(err.value) and entry['convert_from']['sha256'] in str(err.value)


def test_conversion_is_cached_atomically_with_manifest_sha(cache, monkeypatch):
    entry = resolver.manifest_entry(COMPACT)
    path = resolver.resolve_weights(COMPACT)
    assert path == str(cache / entry['convert_from']['filename'])
    assert resolver.sha256_file(path) == entry['convert_from']['sha256']
    assert sorted(os.listdir(cache)) == [entry['convert_from']['filename']]  # no temp files left
    monkeypatch.setattr(resolver, 'convert_entry', lambda *a: pytest.fail('converted twice'))
    assert resolver.resolve_weights(COMPACT) == path


def test_conversion_sha_mismatch_writes_nothing(cache, patch_manifest):
    patch_manifest(lambda m: m[COMPACT]['convert_from'].update(sha256='0' * 64))
    with pytest.raises(WeightsIntegrityError, match='0' * 64):
        resolver.resolve_weights(COMPACT)
    assert os.listdir(cache) == []


def test_load_state_dict_keys_and_corruption(tmp_path):
    sd = {'w': torch.ones(2)}
    torch.save({'params_ema': sd, 'params': {'w': torch.zeros(2)}}, tmp_path / 'a.pth')
    assert torch.equal(resolver.load_state_dict(str(tmp_path / 'a.pth'))['w'], torch.ones(2))
    assert torch.equal(resolver.load_state_dict(str(tmp_path / 'a.pth'), 'params')['w'], torch.zeros(2))
    torch.save(sd, tmp_path / 'bare.pth')
    assert set(resolver.load_state_dict(str(tmp_path / 'bare.pth'))) == {'w'}
    with pytest.raises(WeightsIntegrityError, match='no key'):
        resolver.load_state_dict(str(tmp_path / 'bare.pth'), 'params_ema')
    data = (tmp_path / 'a.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(WeightsIntegrityError, match='cut.pth'):
        resolver.load_state_dict(str(tmp_path / 'cut.pth'))
    (tmp_path / 'junk.pth').write_bytes(b'\x00junk' * 10)
    with pytest.raises(WeightsIntegrityError, match='junk.pth'):
        resolver.load_state_dict(str(tmp_path / 'junk.pth'))


def test_build_pretrained_compact(cache):
    net = resolver.build_pretrained(COMPACT)
    assert not net.training
    with torch.no_grad():
        out = net(torch.rand(1, 3, 8, 8))
    assert out.shape == (1, 3, 32, 32)
    net2 = resolver.build_pretrained('realesr-animevideov3-x2')
    with torch.no_grad():
        assert net2(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)


def test_build_pretrained_mismatch_names_file_and_arch(cache, tmp_path):
    bad = tmp_path / 'bad.pth'
    state = resolver.load_state_dict(resolver.resolve_weights(COMPACT), 'params')
    state['body.0.weight'] = torch.zeros(64, 3, 5, 5)
    torch.save({'params': state}, bad)
    with pytest.raises(WeightsIntegrityError) as err:
        resolver.build_pretrained(COMPACT, explicit_path=str(bad))
    assert str(bad) in str(err.value) and 'SRVGGNetCompact' in str(err.value)


def test_build_pretrained_reads_a_checkpoint_under_the_chosen_key(tmp_path):
    """A tta_sr / BasicSR checkpoint of a manifest arch: params_ema first with param_key=None, else the given key;
    the manifest's own key (params for this family) is the default."""
    arch = resolver.build_arch(resolver.manifest_entry(COMPACT))
    torch.manual_seed(0)
    ema = {k: torch.randn_like(v) for k, v in arch.state_dict().items()}
    plain = {k: torch.randn_like(v) for k, v in arch.state_dict().items()}
    path = tmp_path / 'net_g_latest.pth'
    torch.save({'params': plain, 'params_ema': ema}, path)

    def weight(net):
        return net.state_dict()['body.0.weight']

    assert torch.equal(weight(resolver.build_pretrained(COMPACT, explicit_path=str(path), param_key=None)),
                       ema['body.0.weight'])
    assert torch.equal(weight(resolver.build_pretrained(COMPACT, explicit_path=str(path), param_key='params')),
                       plain['body.0.weight'])
    assert torch.equal(weight(resolver.build_pretrained(COMPACT, explicit_path=str(path))), plain['body.0.weight'])
    torch.save({'params': plain}, path)
    assert torch.equal(weight(resolver.build_pretrained(COMPACT, explicit_path=str(path), param_key=None)),
                       plain['body.0.weight'])
