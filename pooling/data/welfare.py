"""The spec's ``[welfare]`` table: what enrollees pay, reported per group (issue 25 item 4).

```toml
[welfare]
income_per_capita = 6977      # CNY a year per person (S: NBS rural per-capita net income, 2011)
catastrophic_share = 0.4      # a year's out-of-pocket cost above this share of income is catastrophic
travel_cost = 0               # CNY per out-of-network admission (A: assumed; 0 leaves it out)
```

Every field is optional (the defaults above). A spec without the table
means exactly what it meant before: results and evaluations carry no
`welfare` records and `Spec.to_dict` has no `welfare` entry, so their bytes
and digests stay (no version change). The figures are computed by
pooling.economics.welfare; docs/model.md §Welfare states the definitions.

The income default is the 2011 national figure, not scaled to an instance's
year or county: no sourced deflator or county income table is bundled, so an
instance of another year or region should give its own figure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pooling.data.fields import FieldReader

RURAL_INCOME_2011 = 6977.0
"""Rural per-capita net income, China 2011, CNY a year (NBS; CALIBRATION.md, S)."""
CATASTROPHIC_SHARE = 0.4
"""The WHO-style threshold: out-of-pocket spending of at least 40 % of a
household's capacity to pay (non-food spending) is catastrophic
(CALIBRATION.md). Applied here to one enrollee's yearly inpatient
out-of-pocket cost against per-capita income (docs/model.md §Welfare)."""
MAX_INCOME = 1e7
"""An income of CNY 10 M a person a year is beyond any county mean: a larger figure is a unit error."""
MIN_INCOME = 1.0
"""Below CNY 1 a year the threshold falls inside the first lattice cell of any admission's cost."""
MAX_TRAVEL_COST = 1e6
"""A trip costing CNY 1 M per admission is a unit error (the Gushi figure is ~CNY 200 per trip)."""


@dataclass(frozen=True)
class WelfareTerms:
    """Income, the catastrophic threshold's share of it, and the travel cost
    of an out-of-network admission (all per person, CNY a year or per admission)."""

    income_per_capita: float = RURAL_INCOME_2011
    catastrophic_share: float = CATASTROPHIC_SHARE
    travel_cost: float = 0.0

    @property
    def threshold(self) -> float:
        """A year's out-of-pocket cost above this is catastrophic (CNY)."""
        return self.catastrophic_share * self.income_per_capita

    def to_dict(self) -> dict[str, Any]:
        """The table as a spec holds it (reloads to equal terms)."""
        return dataclasses.asdict(self)


def read_welfare(reader: FieldReader, present: bool) -> WelfareTerms | None:
    """The ``[welfare]`` table, or None when the spec has none (`present`
    False). An empty table is the defaults."""
    if not present:
        reader.finish()
        return None
    terms = WelfareTerms(
        income_per_capita=reader.number("income_per_capita", low=MIN_INCOME, high=MAX_INCOME,
                                        default=RURAL_INCOME_2011),
        catastrophic_share=reader.number("catastrophic_share", low=0.0, high=1.0, low_open=True,
                                         default=CATASTROPHIC_SHARE),
        travel_cost=reader.number("travel_cost", low=0.0, high=MAX_TRAVEL_COST, default=0.0))
    reader.finish()
    return terms
