"""models.py: the arch registry builds grayscale classifiers; inits load weights or fail loudly."""
from __future__ import annotations

import pytest
import safetensors.torch
import timm
import torch

from synthmed_core.errors import ModelError, SpecError
from synthmed_core.explain import layers as cam
from synthmed_core.training import models

pytestmark = pytest.mark.train


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets empty data/weights folders and empty download caches."""
    import huggingface_hub.constants

    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SYNTHMED_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    torch.manual_seed(0)


def _forward(model, size, batch=2):
    model.eval()
    with torch.no_grad():
        return model(torch.rand(batch, 1, size, size))


@pytest.mark.parametrize("arch", list(models.ARCHS))
def test_every_registered_arch_builds_a_grayscale_two_class_model_at_28px(arch):
    model = models.build_model(arch, "scratch", 28)
    out = _forward(model, 28)
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    assert model.synthmed["arch"] == arch and model.synthmed["input_size"] == 28


def test_deit_at_28px_uses_patch_4_and_a_7x7_token_grid():
    model = models.build_model("deit_tiny", "scratch", 28)
    assert model.synthmed["patch_size"] == 4 and model.synthmed["token_grid"] == 7


def test_deit_at_224px_keeps_patch_16():
    model = models.build_model("deit_tiny", "scratch", 224)
    assert model.synthmed["patch_size"] == 16 and model.synthmed["token_grid"] == 14
    assert _forward(model, 224, batch=1).shape == (1, 2)


def test_any_timm_model_name_is_accepted():
    model = models.build_model("resnet10t", "scratch", 32)
    assert _forward(model, 32).shape == (2, 2)
    assert models.get_arch("deit_tiny_patch16_224") is models.ARCHS["deit_tiny"]


def test_unknown_arch_lists_short_names_and_similar_timm_names():
    with pytest.raises(SpecError, match=r"resnet18, resnet50, deit_tiny.*deit_tiny_patch16_224"):
        models.build_model("deit-tiny", "scratch", 28)


def test_unknown_init_is_a_spec_error():
    with pytest.raises(SpecError, match="scratch"):
        models.build_model("resnet18", "random", 28)


def test_input_stats_come_from_the_timm_config_averaged_over_rgb():
    model = models.build_model("resnet18", "scratch", 28)
    cfg = model.pretrained_cfg
    mean, std = models.model_input_stats(model)
    assert mean == pytest.approx(sum(cfg["mean"]) / 3) and std == pytest.approx(sum(cfg["std"]) / 3)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_imagenet_init_loads_a_local_file_summing_rgb_filters_and_resetting_the_head(
        tmp_path, suffix):
    source = timm.create_model("resnet18")  # what a downloaded checkpoint holds: RGB, 1000 classes
    saved = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        safetensors.torch.save_file(saved, str(path))
    else:
        torch.save(saved, path)
    model = models.build_model("resnet18", "imagenet", 28, imagenet_weights=str(path))
    assert torch.allclose(model.conv1.weight, saved["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model.layer3[0].conv1.weight, saved["layer3.0.conv1.weight"])
    assert model.fc.weight.shape == (2, 512) and model.synthmed["weights"] == str(path)
    assert torch.isfinite(_forward(model, 28)).all()


def test_imagenet_init_finds_weights_named_after_the_timm_model_in_weights_dir(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("SYNTHMED_WEIGHTS", str(tmp_path / "w"))
    (tmp_path / "w").mkdir()
    saved = timm.create_model("resnet18").state_dict()
    torch.save(saved, tmp_path / "w" / "resnet18.a1_in1k.pth")
    model = models.build_model("resnet18", "imagenet", 28)
    assert torch.equal(model.layer1[0].conv1.weight, saved["layer1.0.conv1.weight"])


def test_imagenet_init_uses_a_copy_in_the_hub_cache_without_network(tmp_path):
    repo = tmp_path / "hub-cache" / "models--timm--resnet18.a1_in1k"  # the layout timm leaves
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    saved = timm.create_model("resnet18").state_dict()
    safetensors.torch.save_file(saved, str(repo / "snapshots" / "abc123" / "model.safetensors"))
    model = models.build_model("resnet18", "imagenet", 28)
    assert torch.equal(model.layer2[0].conv1.weight, saved["layer2.0.conv1.weight"])
    assert model.synthmed["weights"].endswith("model.safetensors")


def test_imagenet_init_resamples_deit_patch_and_position_embeddings_for_28px(tmp_path):
    from timm.layers import resample_abs_pos_embed, resample_patch_embed

    saved = timm.create_model("deit_tiny_patch16_224").state_dict()
    torch.save(saved, tmp_path / "deit.pth")
    model = models.build_model("deit_tiny", "imagenet", 28,
                               imagenet_weights=str(tmp_path / "deit.pth"))
    patch = resample_patch_embed(saved["patch_embed.proj.weight"], (4, 4)).sum(1, keepdim=True)
    assert torch.allclose(model.patch_embed.proj.weight, patch, atol=1e-6)
    pos = resample_abs_pos_embed(saved["pos_embed"], (7, 7), num_prefix_tokens=1)
    assert torch.allclose(model.pos_embed, pos, atol=1e-6)
    assert torch.isfinite(_forward(model, 28)).all()


def test_imagenet_init_rejects_a_file_of_another_model(tmp_path):
    torch.save(timm.create_model("resnet10t").state_dict(), tmp_path / "other.pth")
    with pytest.raises(ModelError, match="other.pth"):
        models.build_model("resnet18", "imagenet", 28, imagenet_weights=str(tmp_path / "other.pth"))


def test_imagenet_init_without_weights_offline_names_the_file_to_provide(monkeypatch):
    monkeypatch.setenv("SYNTHMED_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        models.build_model("resnet18", "imagenet", 28)
    message = str(err.value)
    assert "resnet18.a1_in1k.safetensors" in message and "SYNTHMED_WEIGHTS" in message
    assert str(models.paths.weights_dir()) in message and "--imagenet-weights" in message


def _save_chestmnist(arch="resnet18", input_size=28, profile="smoke"):
    pretrained = models.build_model(arch, "scratch", input_size, num_classes=14)
    path = models.chestmnist_checkpoint_path(arch, input_size, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": arch, "timm_name": models.get_arch(arch).timm_name,
                "input_size": input_size, "model": pretrained.state_dict(),
                "spec": {"profile": profile}, "metrics": {"val_auroc": 0.5}}, path)
    return pretrained, path


def test_chestmnist_checkpoint_path_is_under_pretrained_dir():
    path = models.chestmnist_checkpoint_path("resnet18", 28, "smoke")
    assert path == models.paths.pretrained_dir() / "chestmnist-resnet18-28-smoke.pt"


def test_chestmnist_init_loads_the_backbone_and_a_fresh_two_class_head():
    pretrained, path = _save_chestmnist()
    model = models.build_model("resnet18", "chestmnist", 28, chestmnist_checkpoint=str(path))
    assert torch.equal(model.layer4[1].conv2.weight, pretrained.layer4[1].conv2.weight)
    assert torch.equal(model.bn1.running_mean, pretrained.bn1.running_mean)
    assert model.fc.weight.shape == (2, 512) and model.synthmed["weights"] == str(path)


def test_chestmnist_init_finds_the_single_default_checkpoint():
    _, path = _save_chestmnist()
    assert models.build_model("resnet18", "chestmnist", 28).synthmed["weights"] == str(path)


def test_chestmnist_checkpoint_of_another_arch_is_refused():
    _, path = _save_chestmnist("resnet18")
    with pytest.raises(ModelError, match=r"resnet18.*resnet50"):
        models.build_model("resnet50", "chestmnist", 28, chestmnist_checkpoint=str(path))


def test_chestmnist_checkpoint_of_another_input_size_is_refused():
    _, path = _save_chestmnist("resnet18", 28)
    with pytest.raises(ModelError, match=r"input size 28.*input size 32"):
        models.build_model("resnet18", "chestmnist", 32, chestmnist_checkpoint=str(path))


def test_missing_chestmnist_checkpoint_says_how_to_pretrain(tmp_path):
    with pytest.raises(ModelError, match=r"pretrain chestmnist --arch resnet18"):
        models.build_model("resnet18", "chestmnist", 28,
                           chestmnist_checkpoint=str(tmp_path / "nope.pt"))


@pytest.mark.parametrize("arch, size, layer, side, expected", [
    ("resnet50", 28, "layer2", 4, lambda m: m.layer2),  # layer4 would be 1x1, layer3 2x2
    ("resnet50", 64, "layer3", 4, lambda m: m.layer3),  # layer4 would be 2x2
    ("deit_tiny", 28, "blocks[-1].norm1", 7, lambda m: m.blocks[-1].norm1)])
def test_cam_target_layer_is_the_deepest_with_at_least_a_4x4_map(arch, size, layer, side,
                                                                   expected):
    model = models.build_model(arch, "scratch", size)
    model.train()
    assert cam.cam_target_layer(model, size) == (expected(model), layer, side)
    assert model.training  # the dummy forward restores the mode


def test_cam_target_layer_leaves_no_hooks_behind():
    model = models.build_model("resnet18", "scratch", 28)
    cam.cam_target_layer(model, 28)
    assert not any(m._forward_hooks for m in model.modules())


def test_vit_reshape_drops_the_class_token_and_makes_a_square_map():
    model = models.build_model("deit_tiny", "scratch", 28)
    reshape = cam.cam_reshape_transform(model)
    tokens = torch.rand(2, 1 + 49, 192)
    assert torch.equal(reshape(tokens)[:, :, 0, 1], tokens[:, 2, :])
    assert reshape(tokens).shape == (2, 192, 7, 7)
    assert cam.cam_reshape_transform(models.build_model("resnet18", "scratch", 28)) is None
