"""Out-of-network settlement rules by policy year (issue 14, item 3).

A spec may replace the instance's out-of-network terms by the rules of a
policy year (`[network] settlement`): the share q of out-of-network
admissions that is claimed and the factor phi of their cost that counts, per
tier (same prefecture, same province, other province). "instance" keeps the
file's `out_of_network_tiers`.

- 2012: before direct settlement, the terms the bundled instances carry
  (instances/README.md): care outside the pooling area was paid back only
  after the patient returned home with receipts before a deadline (migrants
  "always could receive low reimbursement"; 15.3% of migrant inpatients went
  home for care, Peng & Ling 2014). Assumed: referrals within the prefecture
  claimed 0.95 at factor 0.85, within the province 0.8 at 0.75, across
  provinces 0.5 at 0.6 (factors from the Luoyang schedule, low quality).
- 2020: direct settlement. In July 2020, 58.6% of inter-provincial hospital
  expenses of insured non-local patients were settled directly (NHSA 2020,
  via Chen 2023; CALIBRATION.md). Directly settled admissions are all claimed,
  the other 41.4% as in 2012: q = 0.586 + 0.414 x 0.5 = 0.793 across provinces
  (derived). Within provinces direct settlement was general by then (assumed:
  q = 1 within the prefecture, 0.95 within the province). Reimbursement
  ratios for care away from home are unchanged (the factors stay 2012's).
"""

from __future__ import annotations

import dataclasses

from pooling.data.instance import Instance, OutOfNetworkTerms

SETTLEMENT_CHOICES = ("instance", "2012", "2020")
SETTLEMENT_RULES: dict[str, dict[str, OutOfNetworkTerms]] = {
    "2012": {"same_prefecture": OutOfNetworkTerms(claim_share=0.95, factor=0.85),
             "same_province": OutOfNetworkTerms(claim_share=0.8, factor=0.75),
             "other_province": OutOfNetworkTerms(claim_share=0.5, factor=0.6)},
    "2020": {"same_prefecture": OutOfNetworkTerms(claim_share=1.0, factor=0.85),
             "same_province": OutOfNetworkTerms(claim_share=0.95, factor=0.75),
             "other_province": OutOfNetworkTerms(claim_share=0.586 + 0.414 * 0.5, factor=0.6)},
}


def under_settlement(instance: Instance, settlement: str) -> Instance:
    """The instance with the out-of-network terms of `settlement` ("instance": unchanged)."""
    if settlement == "instance":
        return instance
    rules = tuple(sorted(SETTLEMENT_RULES[settlement].items()))
    parameters = dataclasses.replace(instance.parameters, tiers=rules)
    return dataclasses.replace(instance, parameters=parameters)
