"""The attack registry: names, parameters, eps parsing and the torchattacks objects it builds."""

import math

import pytest
import torch
import torchattacks
from attack_fixtures import SmallCNN

from attacks import ATTACKS, AttackConfigError, AttackSpec, build_attack, list_attacks, parse_attacks, parse_eps
from attacks.builders import autoattack_configuration
from attacks.eps import parse_eps_list, parse_eps_sweep

# tiny models run fastest on one thread, and the runs stay comparable on a loaded machine
pytestmark = pytest.mark.usefixtures("one_thread")


def test_parse_eps_fractions_decimals_and_lists():
    assert parse_eps("8/255") == pytest.approx(8 / 255)
    assert parse_eps("0.031") == pytest.approx(0.031)
    assert parse_eps(" 1e-2 ") == pytest.approx(0.01)
    assert parse_eps("0,1/255,8/255") == pytest.approx([0.0, 1 / 255, 8 / 255])
    # Lists come back sorted and without duplicates, single values as lists on request.
    assert parse_eps("8/255,0,8/255") == pytest.approx([0.0, 8 / 255])
    assert parse_eps_list("8/255") == pytest.approx([8 / 255])
    assert parse_eps("2.5", norm="L2") == 2.5


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("-1/255", ">= 0"),
        ("2", "[0, 1]"),
        ("300/255", "[0, 1]"),
        ("abc", "not a number"),
        ("1/0", "divides by zero"),
        ("nan", "not a number"),
        ("", "no eps"),
    ],
)
def test_parse_eps_rejects_bad_values_with_one_line(text, fragment):
    with pytest.raises(AttackConfigError) as err:
        parse_eps(text)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_l2_eps_has_its_own_range():
    assert parse_eps("3", norm="L2") == 3.0
    with pytest.raises(AttackConfigError, match="unreasonable"):
        parse_eps("5000", norm="L2")


def test_an_eps_sweep_holds_the_radii_of_every_norm_once_parsed():
    every = parse_eps_sweep("0.1,0,8/255")
    assert every.linf == every.l2 == every.gaussian == (0.0, 8 / 255, 0.1)
    assert parse_eps_sweep(every) is every
    per_norm = parse_eps_sweep({"linf": "0,0.1", "L2": [0.5, 3]})
    assert (per_norm.linf, per_norm.l2, per_norm.gaussian) == ((0.0, 0.1), (0.5, 3.0), (0.0, 0.1))
    assert per_norm.as_dict(["L2", "Linf"]) == {"Linf": [0.0, 0.1], "L2": [0.5, 3.0]}
    l2_only = parse_eps_sweep({"L2": "1"})
    assert l2_only.gaussian == (0.0,)
    with pytest.raises(AttackConfigError, match=r"no eps given for norm Linf; give eps as \{'Linf'"):
        l2_only.require(["L2", "Linf"])
    with pytest.raises(AttackConfigError, match="unknown norm 'l1' in eps"):
        parse_eps_sweep({"l1": [0.1]})
    with pytest.raises(AttackConfigError, match="Linf eps 3 is out of range"):
        parse_eps_sweep([0, 3])  # one list serves Linf and the noise baseline too


def test_parse_attacks_orders_cheapest_first_with_registry_defaults():
    specs = parse_attacks("square,pgd,fgsm")
    assert [s.name for s in specs] == ["fgsm", "pgd", "square"]
    pgd, square = specs[1], specs[2]
    assert (pgd.norm, pgd.steps, pgd.options["random_start"]) == ("Linf", 10, True)
    assert (square.norm, square.options["queries"]) == ("Linf", 5000)
    assert AttackSpec("apgd").steps == 100 and AttackSpec("apgd-t").steps == 100 and AttackSpec("fab").steps == 100


def test_parse_attacks_inline_options_overrides_and_aliases():
    specs = parse_attacks("mi-fgsm:steps=20:decay=0.5,PGD_L2:eps=1.5,aa", restarts=2)
    by_name = {s.name: s for s in specs}
    assert by_name["mifgsm"].steps == 20 and by_name["mifgsm"].options["decay"] == 0.5
    assert by_name["pgdl2"].norm == "L2" and by_name["pgdl2"].eps == 1.5
    assert by_name["autoattack"].steps == 100
    assert all(s.restarts == 2 for s in specs)
    # A targeted override goes to the attacks that have a targeted mode only.
    specs = parse_attacks("pgd,deepfool", targeted=True)
    assert {s.name: s.targeted for s in specs} == {"pgd": True, "deepfool": False}


def test_unknown_attack_names_the_valid_choices():
    with pytest.raises(AttackConfigError) as err:
        parse_attacks("pgd,fgsmm")
    message = str(err.value)
    assert "'fgsmm'" in message and "\n" not in message
    for name in list_attacks():
        assert name in message


@pytest.mark.parametrize(
    "text, overrides, fragment",
    [
        ("pgd:steps=0", {}, "steps"),
        ("pgd:steps=2.5", {}, "whole number"),
        ("pgd", {"steps": -3}, "steps"),
        ("fgsm", {"steps": 10}, "takes the parameter 'steps'"),
        ("pgd:restarts=0", {}, "restarts"),
        ("pgd:norm=L2", {}, "does not support norm"),
        ("pgd:eps=2", {}, "[0, 1]"),
        ("pgd:beta=3", {}, "unknown option 'beta'"),
        ("square:queries=0", {}, "queries"),
        ("pgd:steps", {}, "key=value"),
        ("deepfool", {"targeted": True}, "targeted"),
        ("pgd,pgd", {}, "twice"),
    ],
)
def test_bad_parameters_raise_one_clear_line(text, overrides, fragment):
    with pytest.raises(AttackConfigError) as err:
        parse_attacks(text, **overrides)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_every_registered_attack_builds_with_its_parameters():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    assert set(list_attacks()) == set(ATTACKS) and len(ATTACKS) == 13
    for name in list_attacks():
        spec = AttackSpec(name)
        attack = build_attack(spec, model, 8 / 255)
        assert isinstance(attack, torchattacks.attack.Attack), name
        # Models normalise inside: no attack may normalise again.
        assert attack.normalization_used is None, name
        if spec.info.kind not in ("min-norm", "noise"):
            assert attack.eps == pytest.approx(8 / 255), name
        if hasattr(attack, "steps") and name != "autoattack":
            assert attack.steps == spec.steps, name
    pgd = build_attack(AttackSpec("pgd", steps=20), model, 0.1)
    assert pgd.alpha == pytest.approx(2.5 * 0.1 / 20)  # Madry's 2.5 * eps / steps
    assert build_attack(AttackSpec("gaussian"), model, 0.1).std == 0.1


def test_targeted_specs_build_targeted_attacks():
    model = SmallCNN().eval()
    attack = build_attack(AttackSpec("pgd", targeted=True), model, 0.1)
    assert attack.targeted and attack.attack_mode == "targeted(label)"
    assert not build_attack(AttackSpec("pgd"), model, 0.1).targeted


def test_autoattack_runs_the_original_100_iterations_not_torchattacks_10():
    model = SmallCNN().eval()
    plain = torchattacks.AutoAttack(model, eps=8 / 255, version="standard", n_classes=10, seed=0)
    assert [getattr(a, "steps", None) for a in plain._autoattack.attacks][:3] == [10, 10, 10]
    attack = build_attack(AttackSpec("autoattack"), model, 8 / 255)
    rows = autoattack_configuration(attack)
    assert [r["attack"] for r in rows] == ["APGD", "APGDT", "FAB", "Square"]
    assert [r.get("steps") for r in rows[:3]] == [100, 100, 100]
    assert rows[3]["queries"] == 5000
    assert rows[1]["target_classes"] == 9 and rows[2]["target_classes"] == 9
    assert all(math.isclose(r["eps"], 8 / 255) for r in rows)


def test_spec_to_dict_lists_every_parameter():
    d = AttackSpec("square", norm="l2", eps=0.5).to_dict()
    assert d == {
        "name": "square",
        "norm": "L2",
        "eps": 0.5,
        "steps": None,
        "restarts": 1,
        "targeted": False,
        "loss": "margin",
        "p_init": 0.8,
        "queries": 5000,
    }
