"""The named cases: romanised names, the Zouping top-up, Gushi's sourced
destination share and the contract options (instances/README.md), each
applied in every file that holds its counties.
"""

from __future__ import annotations

PROVINCE_NAMES = {
    "110000": "Beijing", "120000": "Tianjin", "130000": "Hebei", "140000": "Shanxi",
    "150000": "Inner Mongolia", "210000": "Liaoning", "220000": "Jilin", "230000": "Heilongjiang",
    "310000": "Shanghai", "320000": "Jiangsu", "330000": "Zhejiang", "340000": "Anhui",
    "350000": "Fujian", "360000": "Jiangxi", "370000": "Shandong", "410000": "Henan",
    "420000": "Hubei", "430000": "Hunan", "440000": "Guangdong", "450000": "Guangxi",
    "460000": "Hainan", "500000": "Chongqing", "510000": "Sichuan", "520000": "Guizhou",
    "530000": "Yunnan", "540000": "Tibet", "610000": "Shaanxi", "620000": "Gansu",
    "630000": "Qinghai", "640000": "Ningxia", "650000": "Xinjiang",
}
PREFECTURE_NAMES = {
    "110100": "Beijing", "120100": "Tianjin", "310100": "Shanghai", "500100": "Chongqing",
    "150100": "Hohhot", "150500": "Tongliao", "410100": "Zhengzhou", "411500": "Xinyang",
    "370100": "Jinan", "371600": "Binzhou", "440100": "Guangzhou", "440300": "Shenzhen",
}


# Romanised names where the builder has them (the census file is Chinese only).
NAMES = {
    # Tongliao, Inner Mongolia
    "150502": "Horqin District",
    "150521": "Horqin Left Middle Banner",
    "150522": "Horqin Left Rear Banner",
    "150523": "Kailu County",
    "150524": "Hure Banner",
    "150525": "Naiman Banner",
    "150526": "Jarud Banner",
    "150581": "Huolinguole City",
    # Xinyang, Henan
    "411502": "Shihe District", "411503": "Pingqiao District", "411521": "Luoshan County",
    "411522": "Guangshan County", "411523": "Xin County", "411524": "Shangcheng County",
    "411525": "Gushi County", "411526": "Huangchuan County", "411527": "Huaibin County",
    "411528": "Xi County",
    # Binzhou, Shandong
    "371602": "Bincheng District", "371621": "Huimin County", "371622": "Yangxin County",
    "371623": "Wudi County", "371624": "Zhanhua County", "371625": "Boxing County",
    "371626": "Zouping County",
}

# "Z City" case: Zouping County is Binzhou's only net receiver of migrants
# (net absence -8.0% vs +0.2..+9.6% for the other six units) and receives 4.8%
# of its residents from other counties of Shandong vs <= 2.1% elsewhere in the
# prefecture (D, census). Its richer financing is ASSUMED: a county top-up of
# 30% over the national average contribution (rich eastern counties added local
# subsidies; no county figure was found).
ZOUPING_CONTRIBUTION_UPLIFT = 1.30           # A
# County contribution top-ups applied in EVERY file that holds the county, so a
# county's data (and its price alone) is the same in binzhou.json and china.json.
# `--uplift` adds per-file overrides for custom selections only (such a file then
# differs from the committed ones for those counties; say so).
CONTRIBUTION_UPLIFT = {"371626": ZOUPING_CONTRIBUTION_UPLIFT}   # A

# Destination shares given by the sources for one county, which a gravity model of
# origin size, destination pull and distance cannot produce (chain migration).
# Gushi County (Xinyang): about 150,000 of its ~500,000 migrants lived in Beijing
# (S: project source document on migrant workers' health insurance, citing
# Sunflower 2011 and Xinhua 2007; CALIBRATION.md). Applied in every file.
SOURCED_DESTINATION_SHARES = {"411525": {"city:110100": 0.30}}

# Contract options written into the files that hold their origin counties
# (issues 14, 25). Gushi's NRCMS bureau contracted a Beijing hospital from 2006 (S);
# it prepaid CNY 50,000 to it (S). Annual cost (A): the float's forgone interest
# at 3% (CNY 1,500) plus one bureau staff-year to run it (~CNY 40,000: a 2012
# county civil servant's cost, assumed) = CNY 41,500. Price factor 1.0 (A: no
# negotiated discount is reported; the hospital was private and Beijing's price
# level is already the place's). Capacity 3,000 admissions a year (A: the source
# describes one hospital and gives no volume; one private, so most likely
# secondary, hospital of ~300 beds at 85% occupancy and a 10-day mean stay serves
# ~9,300 admissions a year, about a third of which could go to one origin's
# migrants; pooling's default capacity, data.geography.DEFAULT_CONTRACT_CAPACITY,
# is the same figure). Gushi's migrants in Beijing would need ~34,000 a year at
# the modelled admission rate: the contract serves about a tenth of them. In 2014
# the same hospital became a contracted provider for every NRCMS pooling district
# of Xinyang City (S): the second option, the same hospital and capacity.
CONTRACT_CAPACITY = 3000.0   # A
CONTRACT_OPTIONS = [
    {"id": "gushi-beijing", "origin": ["411525"], "destination": "city:110100",
     "annual_cost": 41500.0, "price_factor": 1.0, "capacity": CONTRACT_CAPACITY,
     "sources": ["Gushi-Beijing contract from 2006 with one hospital, CNY 50,000 prepaid (project source "
                 "document, citing Sunflower 2011, Xinhua 2007)",
                 "annual cost, price factor and capacity (one hospital's share) assumed (instances/README.md)"]},
    {"id": "xinyang-beijing", "origin": "prefecture:411500", "destination": "city:110100",
     "annual_cost": 41500.0, "price_factor": 1.0, "capacity": CONTRACT_CAPACITY,
     "sources": ["the Beijing hospital contracted for all Xinyang pooling districts in 2014 (project "
                 "source document, citing Zhongmin 2014)",
                 "annual cost, price factor and capacity (one hospital's share) assumed (instances/README.md)"]},
]


def contract_options(counties: list[dict], places: list[dict]) -> list[dict]:
    """CONTRACT_OPTIONS whose origins are all in the file and whose destination it
    references ("prefecture:<p>" expands to the file's counties of p)."""
    ids = {c["id"] for c in counties}
    referenced = {p["id"] for p in places}
    out = []
    for option in CONTRACT_OPTIONS:
        origin = option["origin"]
        if isinstance(origin, str) and origin.startswith("prefecture:"):
            origin = sorted(c["id"] for c in counties if c["prefecture"] == origin[11:])
        if origin and set(origin) <= ids and option["destination"] in referenced:
            out.append({**option, "origin": list(origin)})
    return out
