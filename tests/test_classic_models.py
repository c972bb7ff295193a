"""Classic models: exact parameter counts, torchvision parity, small variants on 8-32 px inputs."""

import pytest
import torch
import torchvision

from search_spaces import (
    Arch,
    InvalidArchitecture,
    UnknownModel,
    arch_from_json,
    arch_to_json,
    build_model,
    classic_arch,
    create_model,
    list_models,
)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# Paper shapes are only counted, never run: building on the meta device allocates nothing.
@pytest.mark.parametrize(
    "name, shape, classes, expected, reference",
    [
        ("lenet5", (1, 32, 32), 10, 61_706, None),
        ("alexnet", (3, 224, 224), 1000, 61_100_840, lambda: torchvision.models.alexnet(weights=None)),
        ("vgg11", (3, 224, 224), 1000, 132_863_336, lambda: torchvision.models.vgg11(weights=None)),
        ("vgg16", (3, 224, 224), 1000, 138_357_544, lambda: torchvision.models.vgg16(weights=None)),
        ("resnet18", (3, 224, 224), 1000, 11_689_512, lambda: torchvision.models.resnet18(weights=None)),
        (
            "googlenet",
            (3, 224, 224),
            1000,
            6_624_904,
            lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False),
        ),
        # He et al. 2016 table 6: 0.27M; 16-32-64 filters, option A shortcuts
        ("resnet20", (3, 32, 32), 10, 269_722, None),
    ],
)
def test_paper_parameter_counts(name, shape, classes, expected, reference):
    with torch.device("meta"):
        ours = create_model(name, shape, classes, variant="paper")
        assert _params(ours) == expected
        if reference is not None:
            assert _params(reference()) == expected


def _copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy tensors in registration order (names differ, order and shapes must not)."""
    src, dst = source.state_dict(), target.state_dict()
    assert [v.shape for v in src.values()] == [v.shape for v in dst.values()]
    target.load_state_dict(dict(zip(dst.keys(), src.values(), strict=True)))


@pytest.mark.parametrize(
    "name, shape, reference",
    [
        ("alexnet", (3, 224, 224), lambda: torchvision.models.alexnet(weights=None)),
        ("resnet18", (3, 64, 64), lambda: torchvision.models.resnet18(weights=None)),
        (
            "googlenet",
            (3, 64, 64),
            lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False),
        ),
    ],
)
def test_same_function_as_torchvision(name, shape, reference):
    """With torchvision's weights copied in, our model computes torchvision's logits."""
    torch.manual_seed(0)
    theirs = reference().eval()
    ours = create_model(name, shape, 1000, variant="paper").eval()
    _copy_weights(theirs, ours)
    x = torch.rand(1, *shape)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", list_models())
def test_small_variants_run_on_digits_mnist_and_cifar_shapes(name):
    torch.manual_seed(0)
    for shape in [(1, 8, 8), (1, 28, 28), (3, 32, 32)]:
        model = create_model(name, shape, 10, variant="small").eval()
        with torch.no_grad():
            out = model(torch.rand(2, *shape))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        assert create_model(name, shape, 10) is not None  # "auto" picks small here too


def test_registry_lists_the_classic_models():
    assert list_models() == ["alexnet", "googlenet", "lenet5", "resnet18", "resnet20", "vgg11", "vgg16"]
    with pytest.raises(UnknownModel, match="unknown model 'resnet50'; available: alexnet, googlenet"):
        create_model("resnet50", (3, 32, 32), 10)
    with pytest.raises(InvalidArchitecture, match="variant must be one of"):
        create_model("lenet5", (1, 32, 32), 10, variant="large")


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg11", "vgg16", "resnet18", "resnet20"])
def test_classic_models_are_points_of_the_macro_space(name):
    arch = classic_arch(name, (3, 32, 32), 10)
    assert isinstance(arch, Arch)
    restored = arch_from_json(arch_to_json(arch))
    assert restored == arch
    assert _params(build_model(restored, (3, 32, 32), 10)) == _params(create_model(name, (3, 32, 32), 10))


def test_resnet_blocks_are_identity_skips_in_the_spec():
    arch = classic_arch("resnet18", (3, 224, 224), 1000, variant="paper")
    residual = [(i, layer.skips) for i, layer in enumerate(arch.layers) if layer.skips]
    # eight basic blocks; each second conv adds the output from before its block
    assert residual == [(i, (i - 2,)) for i in range(2, 17, 2)]
    assert all(arch.layers[i].combine == "add" for i, _ in residual)


def test_auto_variant_and_googlenet_outside_the_spec():
    assert classic_arch("alexnet", (3, 224, 224)).name == "alexnet-paper"
    assert classic_arch("alexnet", (3, 32, 32)).name == "alexnet-small"
    assert classic_arch("lenet5", (1, 32, 32)).name == "lenet5-paper"
    assert classic_arch("lenet5", (1, 28, 28)).name == "lenet5-small"
    with pytest.raises(InvalidArchitecture, match="googlenet has parallel branches"):
        classic_arch("googlenet", (3, 224, 224))
    # the paper's AlexNet cannot shrink a 32x32 image five times: rejected before building
    with pytest.raises(InvalidArchitecture, match="collapses"):
        create_model("alexnet", (3, 32, 32), 10, variant="paper")
    with pytest.raises(InvalidArchitecture, match="use variant 'small'"):
        create_model("googlenet", (3, 16, 16), 10, variant="paper")
