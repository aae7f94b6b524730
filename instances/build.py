#!/usr/bin/env python3
"""Build real `pooling` instances from the 2010 census county table.

Selects county-level units of ../shared/data/china_counties_census.csv by
prefecture code(s), province code(s) or all of China. Policy year 2012.

Everything a county's record depends on is computed once, from the whole
census table, by `national_model` (so a county, and every place of care its
enrollees use, is byte-for-byte the same in every file that holds it, and
so is its price alone):

* places of care: its own hospitals (the county itself), `city:<prefecture>`
  (the prefecture city's hospitals), `province:<province>` (provincial
  hospitals) and `county:<code>` (a fund county not in the file), priced by
  hospital level (and a Beijing factor), approved by every fund unit of the
  prefecture / province;
* residents' care-seeking: own county / own city / own province shares;
* migrants (net absence) placed by a gravity model: the inter-provincial
  share by region, intra-provincial destinations over the province's other
  units (pull = intra-provincial in-migrants, distance decay calibrated to the
  share staying in their prefecture), inter-provincial destinations over the
  prefectures of other provinces (pull = inter-provincial in-migrants, decay
  calibrated to the central-to-east share), pruned below 0.5% of a unit's
  migrants;
* the admission rate and the county-level base cost, solved so the national
  compensated admission rate and cost per compensated admission match the
  2011-12 aggregates over that care mix.

The calibration constants live in instances/build_tongliao.py (which builds
tongliao.json from the same national model, with border adjacency). Adjacency
here comes from seat coordinates (Delaunay triangulation within each province,
long edges dropped, each prefecture made connected; units without coordinates
attached to their prefecture's central units).

Every constant is tagged S (sourced), D (derived from sourced data) or A
(assumed); instances/README.md gives sources and reasoning.

Usage (from the repository root):
    python instances/build.py --preset xinyang            # writes instances/xinyang.json
    python instances/build.py --all-presets               # every committed file except tongliao.json
    python instances/build.py --prefecture 411500 --name xinyang --out PATH
    python instances/build.py --province 410000 --name henan --out PATH
    python instances/build.py --all --name china --out PATH
    options: --census PATH, --uplift CODE=FACTOR (contribution uplift for this file only, assumed),
             --districts threshold|all|none

Standard library + numpy + scipy only. Deterministic: the same census file
gives byte-identical output files, written atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

import build_tongliao as bt

REPO_ROOT = bt.REPO_ROOT
DEFAULT_CENSUS = bt.DEFAULT_CENSUS
INSTANCES_DIR = REPO_ROOT / "instances"
YEAR = bt.YEAR                               # 2012

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

# ---------------------------------------------------------------- adjacency
DELAUNAY_MAX_RATIO = bt.DELAUNAY_MAX_RATIO   # A: drop edges > 1.5 x the province's median edge
MISSING_COORD_LINKS = 2                      # A: a unit without coordinates borders the 2 known
                                             # units of its prefecture nearest the prefecture centroid

# Seat coordinates of units whose 2010 code is no longer in the cpca adcodes
# table (the census file leaves lon/lat empty for 226 codes). Recovered from the
# same source, the `cpca` package 0.5.5's resources/adcodes.csv (MIT licence),
# by matching the unit's name within its province to the renamed or re-coded
# successor (e.g. 沾化县 371624 -> 沾化区 371603), with 26 renames written out by
# hand (e.g. 陵县 -> 陵城区, 毕节市 -> 七星关区). The seat of the successor unit is
# used (D). 189 of 226 units are recovered; the other 37 (mostly old urban
# districts merged into others, e.g. 崇文区, 闸北区) use MISSING_COORD_LINKS.
# Format: code: (lon, lat, successor code).
RECOVERED_COORDS = {
    "110228": (116.843047, 40.376894, "110118"),  # 密云县 -> 密云区
    "110229": (115.974981, 40.456591, "110119"),  # 延庆县 -> 延庆区
    "120221": (117.826724, 39.330087, "120117"),  # 宁河县 -> 宁河区
    "120223": (116.974232, 38.94745, "120118"),  # 静海县 -> 静海区
    "120225": (117.408296, 40.045851, "120119"),  # 蓟县 -> 蓟州区
    "130124": (114.648318, 37.900199, "130111"),  # 栾城县 -> 栾城区
    "130182": (114.847023, 38.021453, "130109"),  # 藁城市 -> 藁城区
    "130185": (114.313654, 38.085953, "130110"),  # 鹿泉市 -> 鹿泉区
    "130230": (118.460379, 39.27307, "130209"),  # 唐海县 -> 曹妃甸区
    "130323": (119.244847, 39.876253, "130306"),  # 抚宁县 -> 抚宁区
    "130621": (115.322334, 38.949119, "130607"),  # 满城县 -> 满城区
    "130622": (115.489959, 38.765148, "130608"),  # 清苑县 -> 清苑区
    "130625": (115.655774, 39.018736, "130609"),  # 徐水县 -> 徐水区
    "130721": (115.099494, 40.608793, "130705"),  # 宣化县 -> 宣化区
    "130729": (114.740557, 40.766965, "130708"),  # 万全县 -> 万全区
    "130733": (115.282668, 40.974675, "130709"),  # 崇礼县 -> 崇礼区
    "131181": (115.579308, 37.550856, "131103"),  # 冀州市 -> 冀州区
    "210122": (122.765409, 41.516826, "210115"),  # 辽中县 -> 辽中区
    "210282": (121.938269, 39.392095, "210214"),  # 普兰店市 -> 普兰店区
    "211121": (122.082574, 41.002279, "211104"),  # 大洼县 -> 大洼区
    "220181": (125.839573, 44.151742, "220113"),  # 九台巿 -> 九台区
    "220724": (126.049803, 44.9892, "220781"),  # 扶余县 -> 扶余市
    "230182": (126.312624, 45.383218, "230113"),  # 双城市 -> 双城区
    "230833": (134.307884, 48.364687, "230883"),  # 抚远县 -> 抚远市
    "231024": (131.122915, 44.087585, "231086"),  # 东宁县 -> 东宁市
    "310230": (121.397421, 31.623728, "310151"),  # 崇明县 -> 崇明区
    "320124": (119.028288, 31.651099, "320117"),  # 溧水县 -> 溧水区
    "320125": (118.89222, 31.327586, "320118"),  # 高淳县 -> 高淳区
    "320323": (117.169461, 34.180779, "320312"),  # 铜山县 -> 铜山区
    "320482": (119.597811, 31.723219, "320413"),  # 金坛市 -> 金坛区
    "320584": (120.645157, 31.138677, "320509"),  # 吴江市 -> 吴江区
    "320721": (119.17333, 34.841348, "320707"),  # 赣榆县 -> 赣榆区
    "320829": (118.873241, 33.294214, "320813"),  # 洪泽县 -> 洪泽区
    "320982": (120.50085, 33.200333, "320904"),  # 大丰市 -> 大丰区
    "321088": (119.569989, 32.434672, "321012"),  # 江都市 -> 江都区
    "321284": (120.127934, 32.509155, "321204"),  # 姜堰市 -> 姜堰区
    "330183": (119.960076, 30.048692, "330111"),  # 富阳市 -> 富阳区
    "330322": (121.157249, 27.836154, "330305"),  # 洞头县 -> 洞头区
    "330621": (120.495085, 30.081929, "330603"),  # 绍兴县 -> 柯桥区
    "330682": (120.868122, 30.03312, "330604"),  # 上虞巿 -> 上虞区
    "340721": (117.791544, 30.952823, "340706"),  # 铜陵县 -> 义安区
    "340823": (117.250594, 30.706018, "340722"),  # 枞阳县 -> 枞阳县
    "341402": (117.890354, 31.624522, "340181"),  # 居巢区 -> 巢湖市
    "341421": (117.2882, 31.256524, "340124"),  # 庐江县 -> 庐江县
    "341422": (117.902366, 31.303167, "340225"),  # 无为县 -> 无为县
    "341423": (118.101421, 31.735598, "340522"),  # 含山县 -> 含山县
    "341424": (118.353667, 31.742293, "340523"),  # 和县 -> 和县
    "341521": (116.798232, 32.545109, "340422"),  # 寿县 -> 寿县
    "350784": (118.120464, 27.331876, "350703"),  # 建阳市 -> 建阳区
    "350822": (116.732091, 24.723961, "350803"),  # 永定县 -> 永定区
    "360122": (115.815277, 28.692864, "360112"),  # 新建县 -> 新建区
    "360427": (116.04506, 29.448128, "360483"),  # 星子县 -> 庐山市
    "360782": (114.765412, 25.66145, "360703"),  # 南康市 -> 南康区
    "361122": (118.19124, 28.436285, "361103"),  # 广丰县 -> 广丰区
    "370521": (118.575228, 37.573054, "370505"),  # 垦利县 -> 垦利区
    "370882": (116.783833, 35.553144, "370812"),  # 兖州市 -> 兖州区
    "371081": (122.05767, 37.193735, "371003"),  # 文登市 -> 文登区
    "371421": (116.576092, 37.335794, "371403"),  # 陵县 -> 陵城区
    "371624": (118.098902, 37.69926, "371603"),  # 沾化县 -> 沾化区
    "371727": (115.57302, 35.070995, "371703"),  # 定陶县 -> 定陶区
    "410224": (114.441285, 34.756916, "410212"),  # 开封县 -> 祥符区
    "411222": (111.103563, 34.720547, "411203"),  # 陕县 -> 陕州区
    "420321": (110.81205, 32.834775, "420304"),  # 郧县 -> 郧阳区
    "430122": (112.831176, 28.353434, "430112"),  # 望城县 -> 望城区
    "440183": (113.810627, 23.261465, "440118"),  # 增城市 -> 增城区
    "440184": (113.586679, 23.548748, "440117"),  # 从化巿 -> 从化区
    "440923": (111.013556, 21.514163, "440904"),  # 电白县 -> 电白区
    "441283": (112.457981, 23.025305, "441204"),  # 高要市 -> 高要区
    "441421": (116.081656, 24.265926, "441403"),  # 梅县 -> 梅县区
    "441723": (112.006363, 21.868337, "441704"),  # 阳东县 -> 阳东区
    "441827": (113.017747, 23.734677, "441803"),  # 清新县 -> 清新区
    "445121": (116.678203, 23.462613, "445103"),  # 潮安县 -> 潮安区
    "445221": (116.412015, 23.566126, "445203"),  # 揭东县 -> 揭东区
    "445323": (112.003208, 23.071019, "445303"),  # 云安县 -> 云安区
    "450122": (108.27467, 23.158595, "450110"),  # 武鸣县 -> 武鸣区
    "450221": (109.32638, 24.254892, "450206"),  # 柳江县 -> 柳江区
    "450322": (110.212463, 25.238628, "450312"),  # 临桂县 -> 临桂区
    "451025": (106.417805, 23.134117, "451081"),  # 靖西县 -> 靖西市
    "500222": (106.651361, 29.028066, "500110"),  # 綦江县 -> 綦江区
    "500223": (105.840431, 30.190992, "500152"),  # 潼南县 -> 潼南区
    "500224": (106.056404, 29.844811, "500151"),  # 铜梁县 -> 铜梁区
    "500225": (105.721733, 29.707032, "500111"),  # 大足县 -> 大足区
    "500226": (105.594623, 29.405002, "500153"),  # 荣昌县 -> 荣昌区
    "500227": (106.227305, 29.592024, "500120"),  # 璧山县 -> 璧山区
    "500234": (108.393135, 31.160711, "500154"),  # 开县 -> 开州区
    "510122": (103.923566, 30.574449, "510116"),  # 双流县 -> 双流区
    "510724": (104.567187, 31.534886, "510705"),  # 安县 -> 安州区
    "511422": (103.872949, 30.193056, "511403"),  # 彭山县 -> 彭山区
    "511522": (104.969152, 28.846382, "511503"),  # 南溪县 -> 南溪区
    "511721": (107.511749, 31.196157, "511703"),  # 达县 -> 达川区
    "511821": (103.109184, 30.069954, "511803"),  # 名山县 -> 名山区
    "512081": (104.546773, 30.410754, "510185"),  # 简阳市 -> 简阳市
    "513229": (102.20652, 31.905693, "513201"),  # 马尔康县 -> 马尔康市
    "513321": (101.957146, 29.998435, "513301"),  # 康定县 -> 康定市
    "520321": (106.829574, 27.536298, "520304"),  # 遵义县 -> 播州区
    "520421": (106.256412, 26.405715, "520403"),  # 平坝县 -> 平坝区
    "522201": (109.263998, 27.815927, "520602"),  # 铜仁市 -> 碧江区
    "522222": (108.839557, 27.69965, "520621"),  # 江口县 -> 江口县
    "522223": (108.906411, 27.235813, "520622"),  # 玉屏侗族自治县 -> 玉屏侗族自治县
    "522224": (108.223612, 27.513829, "520623"),  # 石阡县 -> 石阡县
    "522225": (108.253882, 27.93755, "520624"),  # 思南县 -> 思南县
    "522226": (108.409751, 27.994246, "520625"),  # 印江土家族苗族自治县 -> 印江土家族苗族自治县
    "522227": (108.119807, 28.263963, "520626"),  # 德江县 -> 德江县
    "522228": (108.50387, 28.563927, "520627"),  # 沿河土家族自治县 -> 沿河土家族自治县
    "522229": (109.202886, 28.154071, "520628"),  # 松桃苗族自治县 -> 松桃苗族自治县
    "522230": (109.213644, 27.517896, "520603"),  # 万山特区 -> 万山区
    "522401": (105.30474, 27.298458, "520502"),  # 毕节市 -> 七星关区
    "522422": (105.613037, 27.141735, "520521"),  # 大方县 -> 大方县
    "522423": (106.033544, 27.007713, "520522"),  # 黔西县 -> 黔西县
    "522424": (106.220227, 27.459214, "520523"),  # 金沙县 -> 金沙县
    "522425": (105.770542, 26.663449, "520524"),  # 织金县 -> 织金县
    "522426": (105.382714, 26.777645, "520525"),  # 纳雍县 -> 纳雍县
    "522427": (104.253071, 26.873806, "520526"),  # 威宁彝族回族苗族自治县 -> 威宁彝族回族苗族自治县
    "522428": (104.727418, 27.123078, "520527"),  # 赫章县 -> 赫章县
    "530121": (102.821675, 24.885587, "530114"),  # 呈贡县 -> 呈贡区
    "530328": (103.822324, 25.600507, "530303"),  # 沾益县 -> 沾益区
    "530421": (102.75344, 24.287485, "530403"),  # 江川县 -> 江川区
    "530522": (98.490966, 25.020439, "530581"),  # 腾冲县 -> 腾冲市
    "532522": (103.364905, 23.396201, "532503"),  # 蒙自县 -> 蒙自市
    "532526": (103.414874, 24.411912, "532504"),  # 弥勒县 -> 弥勒市
    "532621": (104.232665, 23.386527, "532601"),  # 文山县 -> 文山市
    "533321": (98.857977, 25.822879, "533301"),  # 泸水县 -> 泸水市
    "533421": (99.700904, 27.829578, "533401"),  # 香格里拉县 -> 香格里拉市
    "540125": (91.003339, 29.646063, "540103"),  # 堆龙德庆县 -> 堆龙德庆区
    "542121": (97.196021, 31.112087, "540302"),  # 昌都县 -> 卡若区
    "542122": (98.21843, 31.499202, "540321"),  # 江达县 -> 江达县
    "542123": (98.27097, 30.860099, "540322"),  # 贡觉县 -> 贡觉县
    "542124": (96.600246, 31.211601, "540323"),  # 类乌齐县 -> 类乌齐县
    "542125": (95.619868, 31.409024, "540324"),  # 丁青县 -> 丁青县
    "542126": (97.568752, 30.653943, "540325"),  # 察雅县 -> 察雅县
    "542127": (96.917836, 30.053209, "540326"),  # 八宿县 -> 八宿县
    "542128": (97.841022, 29.671069, "540327"),  # 左贡县 -> 左贡县
    "542129": (98.593113, 29.679907, "540328"),  # 芒康县 -> 芒康县
    "542132": (95.825197, 30.741845, "540329"),  # 洛隆县 -> 洛隆县
    "542133": (94.7078, 30.933652, "540330"),  # 边坝县 -> 边坝县
    "542221": (91.761538, 29.224904, "540502"),  # 乃东县 -> 乃东区
    "542222": (91.33725, 29.245113, "540521"),  # 扎囊县 -> 扎囊县
    "542223": (90.98414, 29.289455, "540522"),  # 贡嘎县 -> 贡嘎县
    "542224": (92.015818, 29.259189, "540523"),  # 桑日县 -> 桑日县
    "542225": (91.683881, 29.024625, "540524"),  # 琼结县 -> 琼结县
    "542226": (92.203738, 29.062826, "540525"),  # 曲松县 -> 曲松县
    "542227": (91.433509, 28.438202, "540526"),  # 措美县 -> 措美县
    "542228": (90.859992, 28.385713, "540527"),  # 洛扎县 -> 洛扎县
    "542229": (92.593993, 29.14029, "540528"),  # 加查县 -> 加查县
    "542231": (92.463308, 28.408548, "540529"),  # 隆子县 -> 隆子县
    "542232": (91.960132, 27.991707, "540530"),  # 错那县 -> 错那县
    "542233": (90.397977, 28.968031, "540531"),  # 浪卡子县 -> 浪卡子县
    "542301": (88.898483, 29.24779, "540202"),  # 日喀则市 -> 桑珠孜区
    "542322": (89.099242, 29.68233, "540221"),  # 南木林县 -> 南木林县
    "542323": (89.605627, 28.911626, "540222"),  # 江孜县 -> 江孜县
    "542324": (87.12612, 28.658743, "540223"),  # 定日县 -> 定日县
    "542325": (88.021674, 28.899664, "540224"),  # 萨迦县 -> 萨迦县
    "542326": (87.63704, 29.081659, "540225"),  # 拉孜县 -> 拉孜县
    "542327": (87.236051, 29.294802, "540226"),  # 昂仁县 -> 昂仁县
    "542328": (88.261664, 29.432476, "540227"),  # 谢通门县 -> 谢通门县
    "542329": (89.261977, 29.107688, "540228"),  # 白朗县 -> 白朗县
    "542330": (89.841983, 29.230933, "540229"),  # 仁布县 -> 仁布县
    "542331": (89.681663, 28.555627, "540230"),  # 康马县 -> 康马县
    "542332": (87.765872, 28.364159, "540231"),  # 定结县 -> 定结县
    "542333": (84.03153, 29.770279, "540232"),  # 仲巴县 -> 仲巴县
    "542334": (88.907093, 27.484806, "540233"),  # 亚东县 -> 亚东县
    "542335": (85.297534, 28.852393, "540234"),  # 吉隆县 -> 吉隆县
    "542336": (85.982237, 28.155186, "540235"),  # 聂拉木县 -> 聂拉木县
    "542337": (85.232941, 29.328818, "540236"),  # 萨嘎县 -> 萨嘎县
    "542338": (88.520031, 28.274601, "540237"),  # 岗巴县 -> 岗巴县
    "542621": (94.361094, 29.636576, "540402"),  # 林芝县 -> 巴宜区
    "542622": (93.246077, 29.88528, "540421"),  # 工布江达县 -> 工布江达县
    "542623": (94.213679, 29.213811, "540422"),  # 米林县 -> 米林县
    "542624": (95.333197, 29.325298, "540423"),  # 墨脱县 -> 墨脱县
    "542625": (95.767913, 29.859028, "540424"),  # 波密县 -> 波密县
    "542626": (97.466919, 28.66128, "540425"),  # 察隅县 -> 察隅县
    "542627": (93.074702, 29.046337, "540426"),  # 朗县 -> 朗县
    "610126": (109.088297, 34.534829, "610117"),  # 高陵县 -> 高陵区
    "610521": (109.775247, 34.495915, "610503"),  # 华县 -> 华州区
    "610624": (109.328842, 36.863854, "610603"),  # 安塞县 -> 安塞区
    "610823": (109.294346, 37.962208, "610803"),  # 横山县 -> 横山区
    "632121": (102.108834, 36.500563, "630203"),  # 平安县 -> 平安区
    "632122": (102.830892, 36.320321, "630222"),  # 民和回族土族自治县 -> 民和回族土族自治县
    "632123": (102.401724, 36.482058, "630202"),  # 乐都县 -> 乐都区
    "632126": (101.959271, 36.844248, "630223"),  # 互助土族自治县 -> 互助土族自治县
    "632127": (102.264143, 36.094908, "630224"),  # 化隆回族自治县 -> 化隆回族自治县
    "632128": (102.489135, 35.851152, "630225"),  # 循化撒拉族自治县 -> 循化撒拉族自治县
    "632721": (97.008784, 32.993106, "632701"),  # 玉树县 -> 玉树市
    "652101": (89.185877, 42.942327, "650402"),  # 吐鲁番市 -> 高昌区
    "652122": (90.21333, 42.868744, "650421"),  # 鄯善县 -> 鄯善县
    "652123": (88.653827, 42.792526, "650422"),  # 托克逊县 -> 托克逊县
    "652201": (93.514797, 42.827254, "650502"),  # 哈密市 -> 伊州区
    "652222": (93.010383, 43.599929, "650521"),  # 巴里坤哈萨克自治县 -> 巴里坤哈萨克自治县
    "652223": (94.697074, 43.254978, "650522"),  # 伊吾县 -> 伊吾县
}

# ---------------------------------------------------------------- case studies
# Romanised names where the builder has them (the census file is Chinese only).
NAMES = dict(bt.NAMES)
NAMES.update({
    # Xinyang, Henan
    "411502": "Shihe District", "411503": "Pingqiao District", "411521": "Luoshan County",
    "411522": "Guangshan County", "411523": "Xin County", "411524": "Shangcheng County",
    "411525": "Gushi County", "411526": "Huangchuan County", "411527": "Huaibin County",
    "411528": "Xi County",
    # Binzhou, Shandong
    "371602": "Bincheng District", "371621": "Huimin County", "371622": "Yangxin County",
    "371623": "Wudi County", "371624": "Zhanhua County", "371625": "Boxing County",
    "371626": "Zouping County",
})

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
# (issue 14). Gushi's NRCMS bureau contracted a Beijing hospital from 2006 (S);
# it prepaid CNY 50,000 to it (S). Annual cost (A): the float's forgone interest
# at 3% (CNY 1,500) plus one bureau staff-year to run it (~CNY 40,000: a 2012
# county civil servant's cost, assumed) = CNY 41,500. Price factor 1.0 (A: no
# negotiated discount is reported; the hospital was private and Beijing's price
# level is already the place's). In 2014 the same hospital became a contracted
# provider for every NRCMS pooling district of Xinyang City (S): the second option.
CONTRACT_OPTIONS = [
    {"id": "gushi-beijing", "origin": ["411525"], "destination": "city:110100",
     "annual_cost": 41500.0, "price_factor": 1.0,
     "sources": ["Gushi-Beijing contract from 2006, CNY 50,000 prepaid (project source document, citing "
                 "Sunflower 2011, Xinhua 2007)", "annual cost and price factor assumed (instances/README.md)"]},
    {"id": "xinyang-beijing", "origin": "prefecture:411500", "destination": "city:110100",
     "annual_cost": 41500.0, "price_factor": 1.0,
     "sources": ["the Beijing hospital contracted for all Xinyang pooling districts in 2014 (project "
                 "source document, citing Zhongmin 2014)", "annual cost and price factor assumed"]},
]

PRESETS = {
    "xinyang": {"prefectures": ["411500"], "provinces": [], "all": False, "uplift": {},
                "description": "Xinyang prefecture, Henan (code 411500): 10 county-level NRCMS funds "
                               "incl. Gushi County (411525, ~40% of its registered population absent)"},
    "binzhou": {"prefectures": ["371600"], "provinces": [], "all": False, "uplift": {},
                "description": "Binzhou prefecture, Shandong (code 371600): 7 county-level NRCMS funds, set "
                               "up as a 'Z City' case: Zouping County (371626) is the rich county, with an "
                               "ASSUMED contribution 30% above the others"},
    "henan": {"prefectures": [], "provinces": ["410000"], "all": False, "uplift": {},
              "description": "Henan province (code 410000): every county-level NRCMS fund"},
    "china": {"prefectures": [], "provinces": [], "all": True, "uplift": {},
              "description": "All of China: every county-level NRCMS fund of the 2010 census table"},
}


# ---------------------------------------------------------------- helpers
def fail(msg: str) -> None:
    sys.exit(f"error: {msg}")


def agri_share(row: dict, path: Path) -> float:
    return 1.0 - bt.num(row, "nonagri_hukou_pct_2010", path) / 100.0


def runs_fund(row: dict, path: Path, districts: str) -> bool:
    if row["level"] != "district":
        return True
    if districts == "all":
        return True
    if districts == "none":
        return False
    return agri_share(row, path) >= DISTRICT_MIN_AGRI_SHARE


def coords(row: dict, path: Path) -> tuple[float, float] | None:
    """Seat (lon, lat) from the census table, else RECOVERED_COORDS, else None."""
    if row.get("lon", "").strip() != "" and row.get("lat", "").strip() != "":
        return bt.num(row, "lon", path), bt.num(row, "lat", path)
    hit = RECOVERED_COORDS.get(row["code"])
    return (hit[0], hit[1]) if hit else None


class UnionFind:
    def __init__(self, items):
        self.parent = {i: i for i in items}

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a, b) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True


# ---------------------------------------------------------------- national model
# Everything a county's data depends on is computed here once, from the whole
# census table (never from the selection), so a county and the places its
# enrollees use are the same in every file that holds it.
def haversine_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(a, dtype=float)) for a in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2.0 * bt.EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def city_key(prefecture: str) -> str:
    return "city:" + CITY_OF_PREFECTURE.get(prefecture, prefecture)


def province_key(province: str) -> str:
    return "province:" + province


def county_key(code: str) -> str:
    return "county:" + code


def seat_arrays(rows: list[dict], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Seats of every census unit; a unit without coordinates sits at the centroid
    of its prefecture's known seats (else its province's) (A)."""
    known = [coords(r, path) for r in rows]
    by_pref, by_prov = defaultdict(list), defaultdict(list)
    for r, c in zip(rows, known):
        if c is not None:
            by_pref[r["prefecture_code"]].append(c)
            by_prov[r["province_code"]].append(c)
    lon, lat = [], []
    for r, c in zip(rows, known):
        if c is None:
            pts = by_pref.get(r["prefecture_code"]) or by_prov[r["province_code"]]
            c = (math.fsum(p[0] for p in pts) / len(pts), math.fsum(p[1] for p in pts) / len(pts))
        lon.append(c[0])
        lat.append(c[1])
    return np.array(lon), np.array(lat)


def bisect_increasing(f, target: float, lo: float, hi: float, iters: int = 24) -> float:
    """x in [lo, hi] with f(x) = target, f increasing (clamped to the bracket)."""
    if f(lo) >= target:
        return lo
    if f(hi) <= target:
        return hi
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def prune_and_scale(raw: dict, total: float) -> dict:
    """Drop keys below MIN_DESTINATION_SHARE (of all migrants) and rescale the rest to
    `total`; the largest key is always kept."""
    if total <= 0 or not raw:
        return {}
    kept = {k: w for k, w in raw.items() if w >= MIN_DESTINATION_SHARE}
    if not kept:
        top = min(raw, key=lambda k: (-raw[k], k))
        kept = {top: raw[top]}
    s = math.fsum(kept.values())
    return {k: w * total / s for k, w in kept.items()}


def integer_weights(weights: dict) -> dict:
    """Weights in millionths summing exactly to 1; the rounding remainder goes to
    the largest weight."""
    scale = 10 ** WEIGHT_DECIMALS
    ints = {k: int(round(w * scale)) for k, w in weights.items()}
    top = min(weights, key=lambda k: (-weights[k], k))
    ints[top] += scale - sum(ints.values())
    return {k: v / scale for k, v in sorted(ints.items()) if v > 0}


def national_model(rows: list[dict], path: Path, districts: str = "threshold") -> dict:
    """Places of care, care-seeking, gravity destinations and the national
    calibration (README: "Places of care, care-seeking and migration")."""
    n_rows = len(rows)
    code = [r["code"] for r in rows]
    pref = [r["prefecture_code"] for r in rows]
    prov = [r["province_code"] for r in rows]
    fund = [runs_fund(r, path, districts) for r in rows]
    fund_codes = {code[i] for i in range(n_rows) if fund[i]}
    lon, lat = seat_arrays(rows, path)
    pull_in = np.array([bt.num(r, "inmigrants_other_county_same_province_2010", path) for r in rows])
    pull_out = np.array([bt.num(r, "inmigrants_other_province_2010", path) for r in rows])
    enrollees = {code[i]: int(round(bt.agri_hukou(rows[i], path) * bt.PARTICIPATION))
                 for i in range(n_rows) if fund[i]}
    mu = {code[i]: bt.r6(bt.net_absence(rows[i], path)) for i in range(n_rows) if fund[i]}
    origins = [i for i in range(n_rows) if fund[i]]
    unit_row_all = {"county:" + code[i]: i for i in range(n_rows)}
    mig = {i: enrollees[code[i]] * mu[code[i]] for i in origins}
    mig_total = math.fsum(mig.values())

    # Approved-by sets (national: every fund unit of the prefecture / province).
    pref_funds, prov_funds = defaultdict(list), defaultdict(list)
    for i in origins:
        pref_funds[pref[i]].append(code[i])
        prov_funds[prov[i]].append(code[i])

    # ---- inter-provincial share per origin (S central, D others)
    central = set(bt.CENTRAL_PROVINCES)
    f_central = math.fsum(mig[i] for i in origins if prov[i] in central) / mig_total
    other_share = round((bt.INTER_PROVINCIAL_SHARE_NAT - f_central * bt.INTER_PROVINCIAL_SHARE_CENTRAL)
                        / (1.0 - f_central), 4)
    inter_share = {i: bt.INTER_PROVINCIAL_SHARE_CENTRAL if prov[i] in central else other_share
                   for i in origins}

    # ---- intra-provincial gravity: pull_j d_ij^-beta over the other units of the
    # province, aggregated to places (a fund unit -> county:<code>, a district
    # without a fund -> its prefecture's city:<p>), then pruned.
    thr = MIN_DESTINATION_SHARE
    row_of = {i: r for r, i in enumerate(origins)}
    part_in = np.array([mig[i] for i in origins])      # migrants per origin (weights of the targets)
    s_out = np.array([inter_share[i] for i in origins])
    by_prov = defaultdict(list)
    for i in range(n_rows):
        by_prov[prov[i]].append(i)
    blocks = []
    for _prov, members in sorted(by_prov.items()):
        m = np.array(members)
        o = np.array([i for i in members if fund[i]])
        if len(o) == 0:
            continue
        logd = np.log(np.maximum(haversine_km(lon[o][:, None], lat[o][:, None], lon[m][None, :],
                                              lat[m][None, :]), bt.MIN_DISTANCE_KM))
        self_mask = o[:, None] == m[None, :]
        keys = sorted({county_key(code[j]) if fund[j] else city_key(pref[j]) for j in members})
        kidx = {k: n for n, k in enumerate(keys)}
        agg = np.zeros((len(members), len(keys)))
        for a, j in enumerate(members):
            agg[a, kidx[county_key(code[j]) if fund[j] else city_key(pref[j])]] = 1.0
        key_pref = [pref[unit_row_all[k]] if k.startswith("county:") else k[5:] for k in keys]
        same = np.array([[pref[i] == kp for kp in key_pref] for i in o])
        rows_o = np.array([row_of[int(i)] for i in o])
        blocks.append((o, m, logd, self_mask, agg, keys, same, rows_o))

    def pruned(part: np.ndarray, totals: np.ndarray) -> np.ndarray:
        """Rows of `part` (shares of all migrants) pruned below thr, the largest kept,
        rescaled to `totals`."""
        keep = part >= thr
        if part.shape[1]:
            keep[np.arange(part.shape[0]), np.argmax(part, axis=1)] = True
        kept = np.where(keep & (part > 0), part, 0.0)
        s = kept.sum(axis=1, keepdims=True)
        return np.divide(kept * totals[:, None], s, out=np.zeros_like(kept), where=s > 0)

    def intra_block(block, beta):
        """Intra-provincial shares of all migrants by key after pruning (one row per
        origin of the block), and each origin's intra-provincial total."""
        _o, m, logd, self_mask, agg, _keys, _same, rows_o = block
        w = pull_in[m][None, :] * np.exp(-beta * logd)
        w[self_mask] = 0.0
        tot = w.sum(axis=1, keepdims=True)
        w = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0) @ agg
        share = np.where(tot[:, 0] > 0, 1.0 - s_out[rows_o], 0.0)
        return pruned(w * share[:, None], share), share

    def own_prefecture_share(beta):
        num = den = 0.0
        for block in blocks:
            rows_o, same = block[7], block[6]
            w, share = intra_block(block, beta)
            num += float(part_in[rows_o] @ (w * same).sum(axis=1))
            den += float(part_in[rows_o] @ share)
        return num / den

    beta_intra = round(bisect_increasing(own_prefecture_share, bt.OWN_PREFECTURE_SHARE_TARGET,
                                         *BETA_RANGE), BETA_DECIMALS)

    # ---- inter-provincial gravity over the cities (prefectures) of other provinces
    cities = sorted({city_key(p) for p in pref})
    cidx = {c: k for k, c in enumerate(cities)}
    c_pull = np.zeros(len(cities))
    c_lon = np.zeros(len(cities))
    c_lat = np.zeros(len(cities))
    c_n = np.zeros(len(cities))
    c_lon0 = np.zeros(len(cities))
    c_lat0 = np.zeros(len(cities))
    for i in range(n_rows):
        k = cidx[city_key(pref[i])]
        c_pull[k] += pull_out[i]
        c_lon[k] += pull_out[i] * lon[i]
        c_lat[k] += pull_out[i] * lat[i]
        c_n[k] += 1
        c_lon0[k] += lon[i]
        c_lat0[k] += lat[i]
    # centre of a city: its units' seats weighted by their inter-provincial in-migrants (D)
    c_lon = np.where(c_pull > 0, c_lon / np.where(c_pull > 0, c_pull, 1), c_lon0 / c_n)
    c_lat = np.where(c_pull > 0, c_lat / np.where(c_pull > 0, c_pull, 1), c_lat0 / c_n)
    c_prov = np.array([c[5:7] + "0000" for c in cities])
    o_all = np.array(origins)
    logd_c = np.log(np.maximum(haversine_km(lon[o_all][:, None], lat[o_all][:, None],
                                            c_lon[None, :], c_lat[None, :]), bt.MIN_DISTANCE_KM))
    other_prov = np.array([[prov[i] != cp for cp in c_prov] for i in origins])
    east = np.isin(c_prov, bt.EAST_PROVINCES)
    central_rows = np.array([prov[i] in central for i in origins])

    def inter_weights(beta):
        w = c_pull[None, :] * np.exp(-beta * logd_c) * other_prov
        w = w / w.sum(axis=1, keepdims=True)
        return pruned(w * s_out[:, None], s_out)

    def central_east_share(beta):
        w = inter_weights(beta)[central_rows]
        m = part_in[central_rows]
        return float(m @ w[:, east].sum(axis=1) / (m @ w.sum(axis=1)))

    # decreasing in beta (nearer, non-eastern provinces gain); bisection on -share
    beta_inter = round(bisect_increasing(lambda b: -central_east_share(b), -bt.CENTRAL_TO_EAST_TARGET,
                                         *BETA_RANGE), BETA_DECIMALS)

    # ---- destinations per fund origin (canonical keys: county:<code>, city:<p>)
    w_inter = inter_weights(beta_inter)
    destinations = {}
    intra_final = {}
    for block in blocks:
        w, _share = intra_block(block, beta_intra)
        for a, i in enumerate(block[0]):
            intra_final[int(i)] = {block[5][k]: float(w[a, k]) for k in np.nonzero(w[a])[0]}
    for i in origins:
        c = code[i]
        if mu[c] <= 0:
            destinations[c] = {}
            continue
        kept = dict(intra_final.get(i, {}))
        r = row_of[i]
        kept.update({cities[k]: float(w_inter[r, k]) for k in np.nonzero(w_inter[r])[0]})
        destinations[c] = integer_weights(kept)

    # ---- sourced destination shares that the gravity model cannot reproduce (chain
    # migration): set the share, scale the county's other destinations to the rest.
    for c, shares in sorted(SOURCED_DESTINATION_SHARES.items()):
        if c not in destinations:
            continue
        rest = {k: w for k, w in destinations[c].items() if k not in shares}
        scale = (1.0 - math.fsum(shares.values())) / math.fsum(rest.values())
        destinations[c] = integer_weights({**{k: w * scale for k, w in rest.items()}, **shares})

    # ---- resident care (canonical: own id, city:<p>, province:<v>)
    resident = {}
    for i in origins:
        c = code[i]
        resident[c] = {c: bt.RESIDENT_CARE["own"], city_key(pref[i]): bt.RESIDENT_CARE["city"],
                       province_key(prov[i]): bt.RESIDENT_CARE["province"]}

    # ---- places: level, prefecture, province, approved_by (price set below)
    place_def = {}
    for ck in cities:
        p = ck[5:]
        place_def[ck] = {"level": "prefecture", "prefecture": p, "province": p[:2] + "0000",
                         "approved_by": sorted(pref_funds.get(p, []))}
    for v in sorted(set(prov)):
        place_def[province_key(v)] = {"level": "province", "prefecture": None, "province": v,
                                      "approved_by": sorted(prov_funds.get(v, []))}
    unit_row = {code[i]: i for i in range(n_rows)}
    for c in sorted(fund_codes):
        i = unit_row[c]
        place_def[county_key(c)] = {"level": "county", "prefecture": pref[i], "province": prov[i],
                                    "approved_by": [c]}

    def place_of(c, key):
        """(level, prefecture, province, approved_by) of a canonical key for county c."""
        if key == c:
            i = unit_row[c]
            return "county", pref[i], prov[i], [c]
        d = place_def[key]
        return d["level"], d["prefecture"], d["province"], d["approved_by"]

    def ratio(level, province):
        return bt.PRICE_RATIO[level] * bt.REGIONAL_PRICE_FACTOR.get(province, 1.0)

    def tier(i, prefecture, province):
        if prefecture is not None and prefecture == pref[i]:
            return "same_prefecture"
        if province is not None and province == prov[i]:
            return "same_province"
        return "other_province"

    # ---- calibration: status quo (every county its own pool), national fund units
    pop_all = sum(bt.num(r, "pop_resident_2010", path) for r in rows)
    aged_nat = sum(bt.num(r, "pop_resident_2010", path) * bt.num(r, "age65plus_pct_2010", path)
                   for r in rows) / pop_all / 100.0
    k1 = bt.AGED_RELATIVE_ADMISSION - 1.0
    h = bt.PARAMS["migrant_admission_factor"]
    ageing = {}
    flows = {}
    for i in origins:
        c = code[i]
        aged = bt.num(rows[i], "age65plus_pct_2010", path) / 100.0
        ageing[c] = (1.0 + k1 * aged) / (1.0 + k1 * aged_nat)
        out = []
        for who, share, table in (("resident", 1.0 - mu[c], resident[c]),
                                  ("migrant", mu[c] * h, destinations.get(c, {}))):
            for key, w in table.items():
                level, pp, pv, approved = place_of(c, key)
                in_net = bool(approved) and set(approved) <= {c}
                t = bt.OUT_OF_NETWORK_TIERS[tier(i, pp, pv)]
                q, phi = (1.0, 1.0) if in_net else (t["claim_share"], t["factor"])
                out.append((who, key, share * w, ratio(level, pv), q, phi, key != c))
        flows[c] = out

    def total(f):
        return math.fsum(enrollees[c] * ageing[c] * math.fsum(f(x) for x in flows[c]) for c in flows)
    n_all = math.fsum(enrollees.values())
    claimed = total(lambda x: x[2] * x[4]) / n_all                # per enrollee, at lambda_nat = 1
    claimed_cost = total(lambda x: x[2] * x[4] * x[3]) / n_all    # in units of m0
    spend_pc = bt.NAT_EXPENDITURE / bt.NAT_ENROLLEES
    paid_pc = spend_pc * bt.INPATIENT_SHARE
    claimed_rate = paid_pc / bt.BENEFIT_PER_ADMISSION              # D: compensated admissions/enrollee
    cost_per_claim = bt.BENEFIT_PER_ADMISSION / bt.EFFECTIVE_INPATIENT_REIMB
    lambda_nat = claimed_rate / claimed
    m0 = cost_per_claim * claimed / claimed_cost

    def price(level, province):
        return round(m0 * ratio(level, province), 2)

    places = {}
    for key, d in place_def.items():
        name = place_name(key, d, rows, unit_row)
        places[key] = {"id": key, "name": name, "level": d["level"], "prefecture": d["prefecture"],
                       "province": d["province"],
                       "severity": {"dist": "lognormal", "mean": price(d["level"], d["province"]),
                                    "cv": bt.SEVERITY_CV},
                       "approved_by": d["approved_by"]}
    counties = {}
    for i in origins:
        c = code[i]
        counties[c] = {
            "enrollees": enrollees[c],
            "admission_rate": bt.r6(lambda_nat * ageing[c]),
            "severity": {"dist": "lognormal", "mean": price("county", prov[i]), "cv": bt.SEVERITY_CV},
            "resident_care": resident[c],
            "migrant_share": mu[c],
            "migrant_destinations": destinations.get(c, {}),
        }
    model = {
        "rows": rows, "unit_row": unit_row, "fund_codes": fund_codes, "counties": counties,
        "places": places, "flows": flows, "ageing": ageing, "enrollees": enrollees,
        "aged_nat": aged_nat, "lambda_nat": lambda_nat, "m0": m0, "beta_intra": beta_intra,
        "beta_inter": beta_inter, "inter_share_other": other_share, "f_central": f_central,
        "own_prefecture_share": own_prefecture_share, "central_east_share": central_east_share,
        "claimed_rate": claimed_rate, "cost_per_claim": cost_per_claim,
        "outpatient_pc": round(spend_pc * (1.0 - bt.INPATIENT_SHARE), 2),
        "outside_mean": price("prefecture", None), "inter_share": {code[i]: inter_share[i] for i in origins},
    }
    return model


def place_name(key: str, d: dict, rows: list[dict], unit_row: dict) -> str:
    kind, _, ref = key.partition(":")
    if kind == "county":
        zh = rows[unit_row[ref]]["name_zh"]
        return f"{NAMES.get(ref, zh)} hospitals"
    if kind == "province":
        return f"{PROVINCE_NAMES.get(ref, ref)} provincial hospitals"
    prov = PROVINCE_NAMES.get(d["province"], d["province"])
    if ref in PREFECTURE_NAMES:
        return f"{PREFECTURE_NAMES[ref]} city hospitals ({prov})"
    return f"City hospitals of prefecture {ref} ({prov})"


def instance_parameters(model: dict) -> dict:
    """The instance-wide parameters (the same in every file)."""
    return {
        "admin_fixed_per_fund": bt.ADMIN_FIXED_PER_FUND,
        "admin_financing": bt.ADMIN_FINANCING,
        "out_of_network_factor": bt.PARAMS["out_of_network_factor"],
        "out_of_network_claim_share": bt.PARAMS["out_of_network_claim_share"],
        "out_of_network_tiers": {k: dict(v) for k, v in bt.OUT_OF_NETWORK_TIERS.items()},
        "migrant_admission_factor": bt.PARAMS["migrant_admission_factor"],
        "outside_severity": {"dist": "lognormal", "mean": model["outside_mean"], "cv": bt.SEVERITY_CV},
        "frequency_shock_cv": bt.PARAMS["frequency_shock_cv"],
        "regional_shocks": {k: dict(v) for k, v in bt.REGIONAL_SHOCKS.items()},
    }


def assemble_counties(model: dict, ids: list[str], adjacency: dict, uplift: dict,
                      names: dict) -> tuple[list[dict], list[dict]]:
    """The county records of the units `ids` and the places they reference.
    A key county:<k> becomes k when k is in the file."""
    in_file = set(ids)
    rows, unit_row = model["rows"], model["unit_row"]

    def local(key):
        if key.startswith("county:") and key[7:] in in_file:
            return key[7:]
        return key
    counties, referenced = [], set()
    for cid in sorted(ids):
        r = rows[unit_row[cid]]
        m = model["counties"][cid]
        contribution = round(bt.CONTRIBUTION * uplift.get(cid, 1.0), 2)
        care = {local(k): w for k, w in m["resident_care"].items()}
        dest = {local(k): w for k, w in m["migrant_destinations"].items()}
        referenced |= {k for k in list(care) + list(dest) if k not in in_file}
        counties.append({
            "id": cid,
            "name": names.get(cid, r["name_zh"]),
            "prefecture": r["prefecture_code"],
            "province": r["province_code"],
            "enrollees": m["enrollees"],
            "contribution_per_capita": contribution,
            "reserves": round(bt.RESERVE_RATIO * m["enrollees"] * contribution, 2),
            "admin_per_capita": bt.ADMIN_PER_CAPITA,
            "outpatient_per_capita": model["outpatient_pc"],
            "admission_rate": m["admission_rate"],
            "severity": dict(m["severity"]),
            "resident_care": dict(sorted(care.items())),
            "migrant_share": m["migrant_share"],
            "migrant_destinations": dict(sorted(dest.items())),
            "adjacent": sorted(adjacency.get(cid, ())),
        })
    places = [model["places"][k] for k in sorted(referenced)]
    return counties, places


# ---------------------------------------------------------------- adjacency
def province_adjacency(units: list[dict], path: Path) -> tuple[set, dict]:
    """Edges among one province's fund-running units (see module docstring)."""
    seat = {r["code"]: coords(r, path) for r in units}
    known = [r for r in units if seat[r["code"]] is not None]
    ids = [r["code"] for r in known]
    stats = {"dropped": 0, "reconnected": 0, "prefecture_links": 0, "missing": 0, "missing_path": 0,
             "recovered": sum(1 for r in units if r["code"] in RECOVERED_COORDS)}
    edges: set = set()
    pos = {}
    if known:
        lon = np.array([seat[r["code"]][0] for r in known])
        lat = np.array([seat[r["code"]][1] for r in known])
        xy = bt.project_km(lon, lat)
        pos = {cid: xy[i] for i, cid in enumerate(ids)}
    if len(known) >= 3:
        # The Tongliao builder's rule: Delaunay, long edges dropped, graph
        # reconnected by the shortest dropped edges (Kruskal).
        lengths, median, edges = bt.delaunay_edges(ids, xy)
        short = sum(1 for d in lengths.values() if d <= DELAUNAY_MAX_RATIO * median)
        stats["dropped"] = len(lengths) - short
        stats["reconnected"] = len(edges) - short
    elif len(known) == 2:
        edges = {tuple(sorted(ids))}

    # Each prefecture connected on its own (contiguity is checked within pools,
    # i.e. on induced subgraphs): join components by their shortest seat-to-seat pairs.
    by_pref = defaultdict(list)
    for r in units:
        by_pref[r["prefecture_code"]].append(r)
    for _pref, members in sorted(by_pref.items()):
        kids = sorted(r["code"] for r in members if seat[r["code"]] is not None)
        if len(kids) >= 2:
            uf = UnionFind(kids)
            kset = set(kids)
            for a, b in edges:
                if a in kset and b in kset:
                    uf.union(a, b)
            pairs = sorted(((float(np.hypot(*(pos[a] - pos[b]))), a, b)
                            for i, a in enumerate(kids) for b in kids[i + 1:]))
            for _, a, b in pairs:
                if uf.union(a, b):
                    edges.add((a, b))
                    stats["prefecture_links"] += 1
        missing = sorted(r["code"] for r in members if seat[r["code"]] is None)
        stats["missing"] += len(missing)
        if not missing:
            continue
        if kids:
            centre = np.mean([pos[k] for k in kids], axis=0)
            nearest = sorted(kids, key=lambda k: (float(np.hypot(*(pos[k] - centre))), k))
            for m in missing:
                for k in nearest[:MISSING_COORD_LINKS]:
                    edges.add(tuple(sorted((m, k))))
        else:   # no unit of the prefecture has coordinates: a path in code order (A)
            stats["missing_path"] += len(missing)
            for a, b in itertools.pairwise(missing):
                edges.add((a, b))
    return edges, stats


# ---------------------------------------------------------------- build
def select(rows: list[dict], path: Path, prefectures, provinces, everything: bool, districts: str):
    fund_rows = [r for r in rows if runs_fund(r, path, districts)]
    if everything:
        chosen = fund_rows
    else:
        pset, vset = set(prefectures), set(provinces)
        known_p = {r["prefecture_code"] for r in rows}
        known_v = {r["province_code"] for r in rows}
        for p in sorted(pset - known_p):
            fail(f"{path}: no prefecture with code {p}")
        for v in sorted(vset - known_v):
            fail(f"{path}: no province with code {v}")
        chosen = [r for r in fund_rows if r["prefecture_code"] in pset or r["province_code"] in vset]
    if not chosen:
        fail("the selection contains no fund-running unit")
    return fund_rows, sorted(chosen, key=lambda r: r["code"])


def build(census_path: Path, name: str, description: str, prefectures=(), provinces=(),
          everything: bool = False, uplift: dict | None = None, districts: str = "threshold",
          model: dict | None = None):
    rows = bt.read_census(census_path)
    required = ["code", "name_zh", "level", "prefecture_code", "province_code", "lon", "lat",
                "pop_resident_2010", "pop_registered_2010", "nonagri_hukou_pct_2010",
                "age65plus_pct_2010", "inmigrants_other_county_same_province_2010",
                "inmigrants_other_province_2010"]
    missing_cols = [c for c in required if c not in rows[0]]
    if missing_cols:
        fail(f"census file {census_path}: missing columns {missing_cols}")
    uplift = dict(uplift or {})
    fund_rows, units = select(rows, census_path, prefectures, provinces, everything, districts)
    in_instance = {r["code"] for r in units}
    for code in sorted(uplift):
        if code not in in_instance:
            fail(f"--uplift: county {code} is not in the instance")
    for r in units:
        if bt.agri_hukou(r, census_path) * bt.PARTICIPATION < 0.5:
            fail(f"{census_path}: county {r['code']}: no agricultural-hukou population")
    if model is None:
        model = national_model(rows, census_path, districts)

    # Adjacency per province over all fund-running units, restricted to the
    # instance (whole prefectures/provinces are selected, so induced subgraphs
    # are the same in every instance).
    by_prov = defaultdict(list)
    for r in fund_rows:
        by_prov[r["province_code"]].append(r)
    nbr = defaultdict(set)
    adj_stats = defaultdict(int)
    for prov in sorted({r["province_code"] for r in units}):
        edges, stats = province_adjacency(by_prov[prov], census_path)
        for k, v in stats.items():
            adj_stats[k] += v
        for a, b in edges:
            if a in in_instance and b in in_instance:
                nbr[a].add(b)
                nbr[b].add(a)

    counties, places = assemble_counties(model, sorted(in_instance), nbr,
                                         {**CONTRIBUTION_UPLIFT, **uplift}, NAMES)
    options = contract_options(counties, places)
    instance = {
        "format": "pooling.instance/2",  # pooling.data.formats: the current instance format
        "name": name,
        "year": YEAR,
        "currency": "CNY",
        "description": (
            f"{description}. Policy year 2012. Enrollees, ageing and migration from the 2010 census; "
            "financing, admissions and cost per admission from national NRCMS aggregates (2011-12); "
            "residents' care at own-county, prefecture-city and provincial hospitals; migrants placed "
            "by a gravity model; adjacency from seat coordinates (Delaunay); several parameters "
            "assumed. Built by instances/build.py; sources and assumptions: instances/README.md."
        ),
        "parameters": instance_parameters(model),
        "places": places,
        "counties": counties,
    }
    if options:
        instance["contract_options"] = options
    info = dict(adj_stats)
    info["model"] = model
    info["instance_recovered"] = sum(1 for r in units if r["code"] in RECOVERED_COORDS)
    info["instance_missing"] = sum(1 for r in units if coords(r, census_path) is None)
    return instance, info


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


def calibration_report(model: dict) -> str:
    """The national calibration and the checks against the sources (stdout only)."""
    out = []
    cs, fl, en = model["counties"], model["flows"], model["enrollees"]
    n_all = math.fsum(en.values())
    mig = {c: en[c] * cs[c]["migrant_share"] for c in cs}
    out.append(f"national 65+ share {model['aged_nat']:.4%}; fund units {len(cs)}, enrollees {n_all:,.0f}, "
               f"migrant-weighted net absence {math.fsum(mig.values()) / n_all:.4%}")
    out.append(f"claimed admissions/enrollee {model['claimed_rate']:.5f} (D: 2012 payout x 0.826 / 1,894); "
               f"cost per claimed admission {model['cost_per_claim']:.2f}")
    out.append(f"admission rate at national ageing lambda_nat {model['lambda_nat']:.5f}; "
               f"county base cost m0 {model['m0']:.2f}")
    prices = sorted({(p['level'], p['severity']['mean']) for p in model['places'].values()})
    out.append("distinct place prices: " + ", ".join(f"{lv} {m:.2f}" for lv, m in prices))
    # realised figures from the rounded values
    claimed = cost = elig = allc = adm = 0.0
    fund_out, adm_out = {}, {}
    for c, flows in fl.items():
        lam = cs[c]["admission_rate"] * en[c]
        m0 = cs[c]["severity"]["mean"] / bt.REGIONAL_PRICE_FACTOR.get(model["rows"][model["unit_row"][c]]
                                                                      ["province_code"], 1.0)
        e_c = e_out = a_out = 0.0
        for _who, _key, w, rho, q, phi, away in flows:
            claimed += lam * w * q
            cost += lam * w * q * rho * m0
            elig += lam * w * q * phi * rho * m0
            allc += lam * w * rho * m0
            adm += lam * w
            e_c += w * q * phi * rho
            if away:
                e_out += w * q * phi * rho
                a_out += w
        fund_out[c] = e_out / e_c
        adm_out[c] = a_out / math.fsum(x[2] for x in flows)
    paid = (bt.NAT_EXPENDITURE / bt.NAT_ENROLLEES) * bt.INPATIENT_SHARE * n_all
    out.append(f"realised: claimed rate {claimed / n_all:.5f}, all admissions {adm / n_all:.5f}, cost per claimed "
               f"admission {cost / claimed:.2f}, mean cost per admission (all, unclaimed too) {allc / adm:.2f}, "
               f"status-quo rate implied by the 2012 payout {paid / elig:.4f}")
    w = [en[c] for c in cs]

    def q(vals, p):
        order = sorted(zip(vals, w))
        tot, acc = math.fsum(w), 0.0
        for v, wt in order:
            acc += wt
            if acc >= p * tot:
                return v
        return order[-1][0]
    fo = [fund_out[c] for c in cs]
    ao = [adm_out[c] for c in cs]
    out.append(f"share of the fund paid out of county (status quo, enrollee-weighted): mean "
               f"{math.fsum(a * b for a, b in zip(fo, w)) / math.fsum(w):.3f}, p10 {q(fo, .1):.3f}, "
               f"median {q(fo, .5):.3f}, p90 {q(fo, .9):.3f}, max {max(fo):.3f}")
    out.append(f"share of admissions out of county: mean {math.fsum(a * b for a, b in zip(ao, w)) / math.fsum(w):.3f}, "
               f"median {q(ao, .5):.3f}, p90 {q(ao, .9):.3f}, max {max(ao):.3f}; "
               f"units above 40%: {sum(1 for a in ao if a > 0.4)}")
    by_prov = defaultdict(lambda: [0.0, 0.0])
    for c, flows in fl.items():
        v = model["rows"][model["unit_row"][c]]["province_code"]
        by_prov[v][0] += cs[c]["admission_rate"] * en[c] * math.fsum(x[2] * x[4] for x in flows)
        by_prov[v][1] += en[c]
    rates = {v: a / b for v, (a, b) in by_prov.items()}
    above = sum(1 for r in rates.values() if r > 0.10)
    out.append(f"claimed admission rate by province: min {min(rates.values()):.4f}, max {max(rates.values()):.4f}; "
               f"provinces above 10%: {above} of {len(rates)}")
    out.append(f"intra-provincial decay beta {model['beta_intra']} (own-prefecture share target "
               f"{bt.OWN_PREFECTURE_SHARE_TARGET}, fit {model['own_prefecture_share'](model['beta_intra']):.4f})")
    out.append(f"inter-provincial decay beta {model['beta_inter']} (central -> east target "
               f"{bt.CENTRAL_TO_EAST_TARGET}, fit {model['central_east_share'](model['beta_inter']):.4f}; "
               f"at beta 0: {model['central_east_share'](0.0):.4f})")
    out.append(f"inter-provincial share: central {bt.INTER_PROVINCIAL_SHARE_CENTRAL}, others "
               f"{model['inter_share_other']} (central origins hold {model['f_central']:.3f} of migrants)")
    # after pruning: own-prefecture share of intra-provincial migrants, central -> east
    num = den = ce_num = ce_den = 0.0
    nkeys = []
    for c, m in cs.items():
        d = m["migrant_destinations"]
        if not d:
            continue
        nkeys.append(len(d))
        row = model["rows"][model["unit_row"][c]]
        p, v = row["prefecture_code"], row["province_code"]
        for key, wt in d.items():
            pp, pv = model["places"][key]["prefecture"], model["places"][key]["province"]
            if pv == v:
                den += mig[c] * wt
                if pp == p:
                    num += mig[c] * wt
            elif v in bt.CENTRAL_PROVINCES:
                ce_den += mig[c] * wt
                if pv in bt.EAST_PROVINCES:
                    ce_num += mig[c] * wt
    out.append(f"after pruning: own-prefecture share {num / den:.4f}, central -> east {ce_num / ce_den:.4f}; "
               f"destinations per migrant-sending unit: mean {sum(nkeys) / len(nkeys):.1f}, max {max(nkeys)}")
    return "\n".join("  " + line for line in out)


def four_tier(model: dict, prefecture: str) -> tuple[float, float, float]:
    """Migrants of a prefecture's fund units: shares in the own prefecture / elsewhere
    in the province / other provinces (net absence weighted)."""
    cs, en = model["counties"], model["enrollees"]
    tot = [0.0, 0.0, 0.0]
    for c, m in cs.items():
        row = model["rows"][model["unit_row"][c]]
        if row["prefecture_code"] != prefecture and row["province_code"] != prefecture:
            continue
        for key, wt in m["migrant_destinations"].items():
            pl = model["places"][key]
            k = (0 if pl["prefecture"] == row["prefecture_code"] else
                 1 if pl["province"] == row["province_code"] else 2)
            tot[k] += en[c] * m["migrant_share"] * wt
    s = sum(tot)
    return tuple(t / s for t in tot)


def dumps(instance: dict) -> str:
    return json.dumps(instance, indent=2, ensure_ascii=False) + "\n"


def summary(instance: dict, info: dict) -> str:
    cs = instance["counties"]
    n = sum(c["enrollees"] for c in cs)
    prefs = {c["prefecture"] for c in cs}
    provs = {c["province"] for c in cs}
    ids = {c["id"] for c in cs}
    no_neighbour = sum(1 for c in cs if not c["adjacent"])
    mig = [(c["enrollees"] * c["migrant_share"], c["migrant_destinations"]) for c in cs]
    tot = math.fsum(m for m, _ in mig)
    in_file = math.fsum(m * w for m, d in mig for k, w in d.items() if k in ids)
    return (f"{instance['name']}: {len(cs)} units, {len(prefs)} prefectures, {len(provs)} provinces, "
            f"{n:,} enrollees, {len(instance['places'])} places; coordinates recovered "
            f"{info['instance_recovered']}, still missing {info['instance_missing']}; in the provinces' "
            f"graphs: Delaunay edges dropped {info['dropped']}, re-added {info['reconnected']}, prefecture "
            f"links added {info['prefecture_links']}; units without neighbours {no_neighbour}; migrants "
            f"living in a fund county of the file {in_file / tot if tot else 0.0:.4f}")


def case_report(model: dict) -> str:
    """Gravity placements against the sourced case figures (stdout only)."""
    out = []
    g = model["counties"].get("411525")
    if g:
        beijing = g["migrant_destinations"].get("city:110100", 0.0)
        top = sorted(g["migrant_destinations"].items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        out.append(f"Gushi 411525: migrant_share {g['migrant_share']}, inter-provincial "
                   f"{model['inter_share']['411525']}; Beijing (city:110100) {beijing:.4f} of its migrants "
                   f"(source: ~150,000 of ~500,000 = 0.30); top: "
                   + ", ".join(f"{k} {w:.3f}" for k, w in top))
    for label, code, src in (("Jincheng 140500", "140500", "0.76 / 0.15 / 0.09 (2006)"),
                             ("Yichun 230700", "230700", "0.10 / 0.34 / 0.56 (2006)"),
                             ("Inner Mongolia 150000", "150000", "region 0.69 / other 0.31 (2014)"),
                             ("Tongliao 150500", "150500", "-")):
        try:
            a, b, c = four_tier(model, code)
        except ZeroDivisionError:
            continue
        out.append(f"{label}: of county leavers, own prefecture {a:.3f} / rest of province {b:.3f} / "
                   f"other provinces {c:.3f} (source: {src})")
    return "\n".join("  " + line for line in out)


def parse_uplift(items) -> dict:
    out = {}
    for item in items or []:
        code, _, factor = item.partition("=")
        try:
            out[code.strip()] = float(factor)
        except ValueError:
            fail(f"--uplift expects CODE=FACTOR, got {item!r}")
        if not out[code.strip()] > 0:
            fail(f"--uplift factor must be > 0, got {item!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--census", type=Path, default=DEFAULT_CENSUS,
                    help="2010 census county table (default: ../shared/data/china_counties_census.csv)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="one committed instance")
    ap.add_argument("--all-presets", action="store_true", help="every committed instance of this builder")
    ap.add_argument("--prefecture", action="append", default=[], help="prefecture code (repeatable)")
    ap.add_argument("--province", action="append", default=[], help="province code (repeatable)")
    ap.add_argument("--all", action="store_true", help="every fund-running unit of China")
    ap.add_argument("--name", help="instance name (custom selections)")
    ap.add_argument("--uplift", action="append", help="CODE=FACTOR contribution uplift (assumed)")
    ap.add_argument("--districts", choices=["threshold", "all", "none"], default="threshold",
                    help="urban districts: agricultural-hukou share >= 32.5%% (default), all or none")
    ap.add_argument("--out", type=Path, help="output file (presets: instances/NAME.json); "
                                             "with --all-presets, an output directory")
    args = ap.parse_args(argv)

    jobs = []
    if args.all_presets or args.preset:
        if args.prefecture or args.province or args.all or args.uplift or args.name:
            fail("--preset/--all-presets take no selection options")
        names = sorted(PRESETS) if args.all_presets else [args.preset]
        outdir = args.out if (args.all_presets and args.out) else INSTANCES_DIR
        for nm in names:
            pr = PRESETS[nm]
            out = args.out if (args.preset and args.out) else outdir / f"{nm}.json"
            jobs.append((out, dict(name=nm, description=pr["description"], prefectures=pr["prefectures"],
                                   provinces=pr["provinces"], everything=pr["all"], uplift=pr["uplift"],
                                   districts=args.districts)))
    else:
        if not (args.prefecture or args.province or args.all):
            fail("give --preset, --all-presets, or a selection (--prefecture, --province, --all)")
        if not args.name or not args.out:
            fail("custom selections need --name and --out")
        sel = (["prefectures " + ",".join(args.prefecture)] if args.prefecture else []) + \
              (["provinces " + ",".join(args.province)] if args.province else [])
        desc = "All of China" if args.all else "County-level NRCMS funds of " + "; ".join(sel)
        jobs.append((args.out, dict(name=args.name, description=desc, prefectures=args.prefecture,
                                    provinces=args.province, everything=args.all,
                                    uplift=parse_uplift(args.uplift), districts=args.districts)))
    model = None
    for out, kw in jobs:
        instance, info = build(args.census, model=model, **kw)
        model = info["model"]
        bt.write_atomic(out, dumps(instance))
        print(f"wrote {out}")
        print("  " + summary(instance, info))
    print("national calibration (the same for every file):")
    print(calibration_report(model))
    print(case_report(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
