"""An `Instance` written back as the JSON data it was read from.

`instance_to_dict` is the inverse of `instance_from_dict`: reading its output
gives an equal instance (tests/test_scenarios.py checks the bundled files), so
code that changes an instance field by field (parameter scenarios,
data.scenarios; calibration) works on the documented file format and is
validated by the one reader. The output carries the current format tag and
every field explicitly (`admin_financing` included), so a version-1 source is
written in the current format with its meaning kept.
"""

from __future__ import annotations

from typing import Any

from pooling.data.formats import FORMAT_FIELD, format_tag
from pooling.data.geography import ContractOption, Place
from pooling.data.instance import DEFAULT_ELASTICITY, DEFAULT_OBSERVED_RATE
from pooling.risk.severity import Severity


def severity_to_dict(severity: Severity) -> dict[str, Any]:
    data: dict[str, Any] = {"dist": severity.dist, "mean": severity.mean, "cv": severity.cv}
    if severity.dist == "spliced":
        data.update(threshold=severity.threshold, tail_index=severity.tail_index,
                    tail_probability=severity.tail_probability)
    return data


def _parameters(params, all_fields: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "admin_fixed_per_fund": params.admin_fixed_per_fund,
        "admin_financing": params.admin_financing,
        "out_of_network_factor": params.out_of_network_factor,
        "out_of_network_claim_share": params.out_of_network_claim_share,
        "migrant_admission_factor": params.migrant_admission_factor,
        "outside_severity": severity_to_dict(params.outside_severity),
        "frequency_shock_cv": params.frequency_shock_cv,
    }
    # The behaviour fields (issue 25) only when they differ from their defaults,
    # so files written before them are written back as they were.
    if all_fields or params.utilisation_elasticity != DEFAULT_ELASTICITY:
        data["utilisation_elasticity"] = params.utilisation_elasticity
    if all_fields or params.observed_rate != DEFAULT_OBSERVED_RATE:
        data["observed_rate"] = params.observed_rate
    if params.tiers:
        data["out_of_network_tiers"] = {tier: {"claim_share": t.claim_share, "factor": t.factor}
                                        for tier, t in params.tiers}
    regional = {level: {"weight": shock.weight, "cv": shock.cv}
                for level, shock in (("prefecture", params.prefecture_shock), ("county", params.county_shock))
                if shock.weight > 0.0 or shock.cv > 0.0}
    if regional:
        data["regional_shocks"] = regional
    return data


def _place(place: Place) -> dict[str, Any]:
    data: dict[str, Any] = {"id": place.id, "name": place.name, "level": place.level}
    if place.prefecture is not None:
        data["prefecture"] = place.prefecture
    if place.province is not None:
        data["province"] = place.province
    data["severity"] = severity_to_dict(place.severity)
    data["approved_by"] = sorted(place.approved_by)
    return data


def _contract(option: ContractOption) -> dict[str, Any]:
    data: dict[str, Any] = {"id": option.id, "origin": sorted(option.origin), "destination": option.destination,
                            "annual_cost": option.annual_cost, "price_factor": option.price_factor,
                            "capacity": option.capacity}
    if option.sources:
        data["sources"] = list(option.sources)
    return data


def _county(county) -> dict[str, Any]:
    data: dict[str, Any] = {"id": county.id, "name": county.name}
    if county.name_en is not None:
        data["name_en"] = county.name_en
    data["prefecture"] = county.prefecture
    if county.province is not None:
        data["province"] = county.province
    data.update(
        enrollees=county.enrollees, contribution_per_capita=county.contribution_per_capita,
        reserves=county.reserves, admin_per_capita=county.admin_per_capita,
        outpatient_per_capita=county.outpatient_per_capita, admission_rate=county.admission_rate,
        severity=severity_to_dict(county.severity), migrant_share=county.migrant_share,
        migrant_destinations=dict(county.migrant_destinations))
    if county.resident_care:
        data["resident_care"] = dict(county.resident_care)
    data["adjacent"] = list(county.adjacent)
    if county.current_rate is not None:
        data["current_rate"] = county.current_rate
    return data


def instance_to_dict(instance, all_fields: bool = False) -> dict[str, Any]:
    """The instance as file data (see the module docstring); `all_fields`
    writes parameters that are at their defaults too (parameter scenarios
    may `set` them). A restricted
    instance (a block) is written with its counties only: its context counties
    are not part of the problem, so write the whole instance instead."""
    if instance.context:
        raise ValueError("instance_to_dict: a restricted instance (a block with context counties) is not a "
                         "file of its own; write the whole instance")
    data: dict[str, Any] = {FORMAT_FIELD: format_tag("instance"), "name": instance.name, "year": instance.year,
                            "currency": instance.currency}
    if instance.description:
        data["description"] = instance.description
    data["parameters"] = _parameters(instance.parameters, all_fields)
    if instance.places:
        data["places"] = [_place(p) for p in instance.places]
    if instance.contract_options:
        data["contract_options"] = [_contract(o) for o in instance.contract_options]
    data["counties"] = [_county(c) for c in instance.counties]
    if instance.provenance is not None:
        data["provenance"] = instance.provenance
    return data
