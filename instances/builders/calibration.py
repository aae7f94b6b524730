"""Calibration constants shared by every instance builder (policy year 2012).

Each constant is tagged S (sourced), D (derived from sourced data) or A
(assumed); instances/README.md gives the sources and the reasoning behind each
assumption. The builders read them from here, so tongliao.json and the
national files cannot drift apart.
"""

from __future__ import annotations

YEAR = 2012

# ---------------------------------------------------------------- calibration
# National NRCMS aggregates, 2012 (S): 805M enrollees, participation 98.3%,
# financing 308.5 CNY per capita, expenditure 240.80 bn CNY.
PARTICIPATION = 0.983                     # S
CONTRIBUTION = 308.5                      # S, CNY/enrollee/yr, national; by province below
NAT_ENROLLEES = 805e6                     # S
NAT_EXPENDITURE = 240.80e9                # S, CNY
INPATIENT_SHARE = 0.826                   # S (2009 share of payouts to inpatient care)
EFFECTIVE_INPATIENT_REIMB = 0.55          # S (2009 ~55%; Sanming 58%; 14 counties >50%):
                                          #   reimbursed / cost of the compensated admissions
BENEFIT_PER_ADMISSION = 1894.0            # S, CNY paid per compensated admission, 2011 (MoH);
                                          #   2009: 92.29 bn x 0.826 / 38.1 M = 2,000 (D)
# => claimed (compensated) admissions per enrollee = 299.13 x 0.826 / 1,894 = 0.1305 (D),
#    cost per claimed admission = 1,894 / 0.55 = 3,443.6 CNY (D); the admission rate and
#    the county-level base cost are solved from these two over the national care mix
#    (national.py: national_model).
AGED_RELATIVE_ADMISSION = 3.0             # A: admission rate of 65+ relative to <65

SEVERITY_CV = 1.0                         # A (lognormal sigma = 0.833), every place

# Places of care and their price levels. Cost per admission 2012, CALIBRATION.md
# "Suggested calibration": county 3,500 : prefecture 8,000 : provincial 15,000
# (levels A; ratios within the sourced 1 : 2.2-3 : 4.8-6.5 : 9.5-12 chain, S/D).
# Only the ratios are used; the level is solved from the national anchor.
LEVEL_COST = {"county": 3500.0, "prefecture": 8000.0, "province": 15000.0}    # A (levels)
PRICE_RATIO = {k: v / LEVEL_COST["county"] for k, v in LEVEL_COST.items()}  # D: 1 : 2.286 : 4.286
# Regional price factor, Beijing only (every place in province 110000): Beijing
# government tertiary hospitals 18,347.76 CNY per inpatient (2009, Beijing Public
# Health Information Center) / national tertiary ~9,716 (2010, derived from a Gansu
# report) = 1.89, level-matched (the 2.6x all-hospital ratio mixes Beijing's
# tertiary-heavy level mix into the price). No other province has a sourced factor.
REGIONAL_PRICE_FACTOR = {"110000": round(18347.76 / 9716.0, 4)}             # D

# Residents' care-seeking: share of residents' admissions at the county's own
# hospitals (THC + county hospitals) / the prefecture city's hospitals / the
# provincial hospitals. A: no national split of NRCMS admissions by level was
# found; 20% out of county is the suggested default (10-40%, one surveyed county
# >40%, S), and with the price ratios it puts ~35% of a county's inpatient fund
# out of county (suggested 35%, range 20-55%, S: one surveyed county >50%).
RESIDENT_CARE = {"own": 0.80, "city": 0.14, "province": 0.06}             # A

# Migrants (net absence, census 2010) split between other provinces and the home
# province: NBS migrant-worker monitoring report 2014: 46.8% of out-migrants
# cross-province nationally, 62.8% of those from central China (S). Central
# origins get 62.8%; the others one common share such that the national
# migrant-weighted mean is 46.8% (D, computed in migration.py).
INTER_PROVINCIAL_SHARE_NAT = 0.468        # S (NBS 2014; 2013: 46.6%; 2019: 43.1%)
INTER_PROVINCIAL_SHARE_CENTRAL = 0.628    # S (NBS 2014; 2018: 60.6%; 2024: 51.8%)
CENTRAL_PROVINCES = ("140000", "340000", "360000", "410000", "420000", "430000")   # S (NBS regions)
EAST_PROVINCES = ("110000", "120000", "130000", "210000", "310000", "320000", "330000",
                  "350000", "370000", "440000", "460000")                          # S (NBS 2013 regions)
# Gravity model targets (migration.py calibrates the distance decays to them):
# 2010 census, people away from their hukou place: 15% within their registration
# city, 52% across cities within the province, 33% across provinces (ISOCARP case
# study, SEC) -> 15 / 67 = 22.4% of intra-provincial movers stay in their prefecture (D).
OWN_PREFECTURE_SHARE_TARGET = round(15.0 / 67.0, 4)                          # D
# NBS 2013: 89.9% of central-region cross-province migrants work in the east (S).
CENTRAL_TO_EAST_TARGET = 0.899                                               # S
MIN_DISTANCE_KM = 10.0                    # A: seat-to-seat distances floored (same-city districts)

ADMIN_PER_CAPITA = 2.0                    # A (nothing found)
ADMIN_FIXED_PER_FUND = 1_000_000.0        # A (nothing found)
ADMIN_FINANCING = "county_budget"         # S: running costs from the county budget, never the
                                          #   fund (Changsha rule; national rule usually attributed
                                          #   to State Council General Office document 2003 no. 3)
RESERVE_RATIO = 0.10                      # A: reserves = 10% of annual revenue

# Out of network, by where the care is bought relative to the county (A, see README):
# referrals inside the prefecture are nearly all claimed, at a lower rate than at
# home (the Luoyang schedule, S (low quality), applied to these prices reimburses 61%
# of a county admission, 59% / 48% of a secondary / tertiary city admission and 47%
# of a provincial one: ratios 0.96 / 0.78 / 0.77, D); provincial hospitals need a
# referral and a higher deductible; care in another
# province needs a trip home to claim (15.3% of migrant inpatients went home for
# care, S) and is reimbursed at the lowest rates.
OUT_OF_NETWORK_TIERS = {
    "same_prefecture": {"claim_share": 0.95, "factor": 0.85},                # A
    "same_province": {"claim_share": 0.8, "factor": 0.75},                   # A
    "other_province": {"claim_share": 0.5, "factor": 0.6},                   # A
}
PARAMS = {
    # scalar fallbacks = the other-province tier (what "outside" would get)
    "out_of_network_factor": OUT_OF_NETWORK_TIERS["other_province"]["factor"],
    "out_of_network_claim_share": OUT_OF_NETWORK_TIERS["other_province"]["claim_share"],
    "migrant_admission_factor": 1.0,      # A (younger, but less access: assumed to cancel)
    # Admission-rate shocks M_c = 0.4 Theta_N + 0.3 Theta_P + 0.3 Theta_C (A): a
    # county's multiplier has sd sqrt(0.4^2 0.05^2 + 0.3^2 0.10^2 + 0.3^2 0.16^2) = 6.0%,
    # so a fund with a 2-3% expected surplus runs a deficit in ~30% of years
    # (suggested 30%, A; "most" of 14 surveyed counties in deficit 2012-13, S).
    "frequency_shock_cv": 0.05,           # A, national
}
# Induced utilisation (issue 25): admissions at rate r scale by
# ((1 - r) / (1 - r0))^e. e: the elasticity of admissions with respect to the
# out-of-pocket price on NCMS claims, a difference-in-differences on a
# cost-sharing cut (S: Liu, Peng & Xiang, J Popul Econ 38(2) 2025; -0.37 to
# -0.68 in other Chinese studies, CALIBRATION.md). r0 (observed_rate) is derived
# in national_model from EFFECTIVE_INPATIENT_REIMB (D on S).
UTILISATION_ELASTICITY = -0.407           # S
REGIONAL_SHOCKS = {
    "prefecture": {"weight": 0.3, "cv": 0.10},                               # A
    "county": {"weight": 0.3, "cv": 0.16},                                   # A
}

# ---------------------------------------------------------------- regional financing
# Regional financing: NRCMS financing per enrollee by province, 2011, scaled to
# the policy year. A province's figure times CONTRIBUTION / NATIONAL_CONTRIBUTION_2011
# (D: the 2012 national financing per enrollee over 2011's, 308.5 / 246.2 = 1.2530,
# the same series), so a province at the national figure gets CONTRIBUTION exactly.
CONTRIBUTION_2011_SOURCE = ("National Bureau of Statistics, China Statistical Yearbook 2012, "
                            "table 21-21 (new rural cooperative medical scheme), per-capita "
                            "financing 2011 (official; CALIBRATION.md)")
NATIONAL_CONTRIBUTION_2011 = 246.2        # S, CNY/enrollee, 2011, same table
CONTRIBUTION_2011 = {                     # S, CNY/enrollee, 2011, same table
    "110000": 637.2,    # Beijing
    "310000": 987.0,    # Shanghai
    "320000": 273.0,    # Jiangsu
    "330000": 408.2,    # Zhejiang
    "520000": 225.4,    # Guizhou (the lowest)
    "540000": 282.8,    # Tibet
}
CONTRIBUTION_2011_FALLBACK_REASON = (
    "no sourced figure for the province (CALIBRATION.md quotes only Beijing, Shanghai, "
    "Zhejiang, Jiangsu, Tibet and Guizhou from the table); the national figure stands in")
CONTRIBUTION_SCALE = CONTRIBUTION / NATIONAL_CONTRIBUTION_2011              # D


def province_contribution(province: str) -> tuple[float, str]:
    """(financing per enrollee in the policy year, label) of a province: its 2011
    figure (S) or the national one (A, CONTRIBUTION_2011_FALLBACK_REASON), times
    CONTRIBUTION_SCALE; rounded to the fen. A province at the national figure
    gets CONTRIBUTION itself, so its counties keep their former value."""
    if province in CONTRIBUTION_2011:
        return round(CONTRIBUTION_2011[province] * CONTRIBUTION_SCALE, 2), "S"
    return CONTRIBUTION, "A"


# ---------------------------------------------------------------- unit selection
# NRCMS funds were run by counties (县, 旗), county-level cities and by urban
# districts that still had a large agricultural population. 2,566 county-level
# units ran NRCMS at end-2012 (S: 代宝珍, 周绿林, national statistics); the census
# table has 1,999 counties + county-level cities, leaving ~567 districts. The
# 566 districts whose agricultural-hukou share is >= 32.5% are included (D: the
# threshold is the one that reproduces that count); the 292 more urban ones are
# left out (no fund of their own; their residents are beyond the instance).
DISTRICT_MIN_AGRI_SHARE = 0.325              # D

# ---------------------------------------------------------------- destinations
# A destination place weighing less than 0.5% of a unit's migrants is pruned and
# its weight spread pro rata over the unit's kept destinations of the same part
# (intra- or inter-provincial), so the split between the parts is kept (A: keeps
# the national file small; computed on national data, so a unit's weights are the
# same in every file).
MIN_DESTINATION_SHARE = 0.005                # A
WEIGHT_DECIMALS = 6
BETA_DECIMALS = 3
BETA_RANGE = (0.0, 6.0)                      # bisection bracket for both distance decays

# The county "prefectures" of the four municipalities have no city of their own:
# their referral hospitals and their city as a destination are the core's (A).
CITY_OF_PREFECTURE = {"110200": "110100", "120200": "120100", "310200": "310100", "500200": "500100"}

# ---------------------------------------------------------------- adjacency
DELAUNAY_MAX_RATIO = 1.5                  # A: drop Delaunay edges longer than 1.5 x the median edge
MISSING_COORD_LINKS = 2                   # A: a unit without coordinates borders the 2 known
                                          # units of its prefecture nearest the prefecture centroid
EARTH_RADIUS_KM = 6371.0088
