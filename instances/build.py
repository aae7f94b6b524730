#!/usr/bin/env python3
"""Build real `pooling` instances from the 2010 census county table.

Selects county-level units of ../shared/data/china_counties_census.csv by
prefecture code(s), province code(s) or all of China, and derives each unit's
county fund exactly as instances/build_tongliao.py does for Tongliao (policy
year 2012; the calibration constants are imported from that script, so the
two builders cannot drift apart), with two differences:

* adjacency comes from seat coordinates (Delaunay triangulation within each
  province, long edges dropped, each prefecture made connected; units without
  coordinates attached to their prefecture's central units), not from border
  descriptions; and
* migrant destinations below MIN_DESTINATION_WEIGHT are pruned (their weight is
  spread over the unit's other in-instance destinations) to keep the national
  file small.

Every constant is tagged S (sourced), D (derived from sourced data) or A
(assumed); instances/README.md gives sources and reasoning.

Usage (from the repository root):
    python instances/build.py --preset xinyang            # writes instances/xinyang.json
    python instances/build.py --all-presets               # every committed file except tongliao.json
    python instances/build.py --prefecture 411500 --name xinyang --out PATH
    python instances/build.py --province 410000 --name henan --out PATH
    python instances/build.py --all --name china --out PATH
    options: --census PATH, --uplift CODE=FACTOR (contribution uplift, assumed),
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
# Destinations weighing less than 0.1% of a unit's migrants are pruned and their
# weight spread pro rata over the unit's kept in-instance destinations (A:
# keeps the national file ~10x smaller; the intra/inter-provincial split and the
# expected cost of every pool containing the origin's main destinations are
# unchanged, and every destination's severity is the same).
MIN_DESTINATION_WEIGHT = 1e-3                # A
WEIGHT_DECIMALS = 6

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

PRESETS = {
    "xinyang": {"prefectures": ["411500"], "provinces": [], "all": False, "uplift": {},
                "description": "Xinyang prefecture, Henan (code 411500): 10 county-level NRCMS funds "
                               "incl. Gushi County (411525, ~40% of its registered population absent)"},
    "binzhou": {"prefectures": ["371600"], "provinces": [], "all": False,
                "uplift": {"371626": ZOUPING_CONTRIBUTION_UPLIFT},
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


def national_calibration(rows: list[dict], path: Path) -> dict:
    """The national figures of build_tongliao.build (same formulas, same table)."""
    pop_all = sum(bt.num(r, "pop_resident_2010", path) for r in rows)
    aged_nat = sum(bt.num(r, "pop_resident_2010", path) * bt.num(r, "age65plus_pct_2010", path)
                   for r in rows) / pop_all / 100.0
    agri_all = sum(bt.agri_hukou(r, path) for r in rows)
    mu_nat = sum(bt.agri_hukou(r, path) * bt.net_absence(r, path) for r in rows) / agri_all
    spend_pc = bt.NAT_EXPENDITURE / bt.NAT_ENROLLEES
    eligible_pc = spend_pc * bt.INPATIENT_SHARE / bt.EFFECTIVE_INPATIENT_REIMB
    p = bt.PARAMS
    mix = (1.0 - mu_nat) + mu_nat * p["migrant_admission_factor"] * p["out_of_network_claim_share"] \
        * p["out_of_network_factor"] * bt.OUTSIDE_SEVERITY_RATIO
    sev_mean = round(eligible_pc / (bt.ADMISSION_RATE_NAT * mix), 2)
    return {"aged_nat": aged_nat, "mu_nat": mu_nat, "sev_mean": sev_mean,
            "outside_mean": round(bt.OUTSIDE_SEVERITY_RATIO * sev_mean, 2),
            "outpatient_pc": round(spend_pc * (1.0 - bt.INPATIENT_SHARE), 2)}


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
          everything: bool = False, uplift: dict | None = None, districts: str = "threshold"):
    rows = bt.read_census(census_path)
    required = ["code", "name_zh", "level", "prefecture_code", "province_code", "lon", "lat",
                "pop_resident_2010", "pop_registered_2010", "nonagri_hukou_pct_2010",
                "age65plus_pct_2010", "inmigrants_other_county_same_province_2010"]
    missing_cols = [c for c in required if c not in rows[0]]
    if missing_cols:
        fail(f"census file {census_path}: missing columns {missing_cols}")
    uplift = dict(uplift or {})
    cal = national_calibration(rows, census_path)
    fund_rows, units = select(rows, census_path, prefectures, provinces, everything, districts)
    in_instance = {r["code"] for r in units}
    for code in sorted(uplift):
        if code not in in_instance:
            fail(f"--uplift: county {code} is not in the instance")

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

    # Intra-provincial destination weights: every unit of the province (fund or
    # not) receives migrants in proportion to its in-migrants from other counties
    # of the province.
    all_by_prov = defaultdict(list)
    for r in rows:
        all_by_prov[r["province_code"]].append(r)
    inflow = {r["code"]: bt.num(r, "inmigrants_other_county_same_province_2010", census_path) for r in rows}
    prov_inflow = {p: math.fsum(inflow[r["code"]] for r in rs) for p, rs in all_by_prov.items()}

    scale = 10 ** WEIGHT_DECIMALS
    counties = []
    pruned_total = 0
    for r in units:
        cid = r["code"]
        enrollees = int(round(bt.agri_hukou(r, census_path) * bt.PARTICIPATION))
        if enrollees < 1:
            fail(f"{census_path}: county {cid}: no agricultural-hukou population")
        contribution = round(bt.CONTRIBUTION * uplift.get(cid, 1.0), 2)
        reserves = round(bt.RESERVE_RATIO * enrollees * contribution, 2)
        mu = bt.r6(bt.net_absence(r, census_path))
        aged = bt.num(r, "age65plus_pct_2010", census_path) / 100.0
        lam = bt.r6(bt.ADMISSION_RATE_NAT * (1.0 + (bt.AGED_RELATIVE_ADMISSION - 1.0) * aged)
                    / (1.0 + (bt.AGED_RELATIVE_ADMISSION - 1.0) * cal["aged_nat"]))

        w_tot = prov_inflow[r["province_code"]] - inflow[cid]
        raw = {}
        if w_tot > 0:
            for p in all_by_prov[r["province_code"]]:
                k = p["code"]
                if k != cid and k in in_instance and inflow[k] > 0:
                    raw[k] = (1.0 - bt.INTER_PROVINCIAL_SHARE) * inflow[k] / w_tot
        in_sum = math.fsum(raw.values())
        kept = {k: w for k, w in raw.items() if w >= MIN_DESTINATION_WEIGHT}
        pruned_total += len(raw) - len(kept)
        kept_sum = math.fsum(kept.values())
        dest_int = {k: int(round(w * in_sum / kept_sum * scale)) for k, w in sorted(kept.items())}
        dest_int = {k: v for k, v in dest_int.items() if v > 0}
        dest = {k: v / scale for k, v in dest_int.items()}
        dest["outside"] = (scale - sum(dest_int.values())) / scale

        counties.append({
            "id": cid,
            "name": NAMES.get(cid, r["name_zh"]),
            "prefecture": r["prefecture_code"],
            "province": r["province_code"],
            "enrollees": enrollees,
            "contribution_per_capita": contribution,
            "reserves": reserves,
            "admin_per_capita": bt.ADMIN_PER_CAPITA,
            "outpatient_per_capita": cal["outpatient_pc"],
            "admission_rate": lam,
            "severity": {"dist": "lognormal", "mean": cal["sev_mean"], "cv": bt.SEVERITY_CV},
            "migrant_share": mu,
            "migrant_destinations": dest,
            "adjacent": sorted(nbr[cid]),
        })

    instance = {
        "name": name,
        "year": YEAR,
        "currency": "CNY",
        "description": (
            f"{description}. Policy year 2012. Enrollees, ageing and migration from the 2010 census; "
            "financing and cost levels from 2012 national NRCMS aggregates; adjacency from seat "
            "coordinates (Delaunay); several parameters assumed. Built by instances/build.py; sources "
            "and assumptions: instances/README.md."
        ),
        "parameters": {
            "admin_fixed_per_fund": bt.ADMIN_FIXED_PER_FUND,
            "out_of_network_factor": bt.PARAMS["out_of_network_factor"],
            "out_of_network_claim_share": bt.PARAMS["out_of_network_claim_share"],
            "migrant_admission_factor": bt.PARAMS["migrant_admission_factor"],
            "outside_severity": {"dist": "lognormal", "mean": cal["outside_mean"], "cv": bt.SEVERITY_CV},
            "frequency_shock_cv": bt.PARAMS["frequency_shock_cv"],
        },
        "counties": counties,
    }
    info = dict(cal)
    info.update(adj_stats)
    info["pruned_destinations"] = pruned_total
    info["instance_recovered"] = sum(1 for r in units if r["code"] in RECOVERED_COORDS)
    info["instance_missing"] = sum(1 for r in units if coords(r, census_path) is None)
    return instance, info


def dumps(instance: dict) -> str:
    return json.dumps(instance, indent=2, ensure_ascii=False) + "\n"


def summary(instance: dict, info: dict) -> str:
    cs = instance["counties"]
    n = sum(c["enrollees"] for c in cs)
    prefs = {c["prefecture"] for c in cs}
    provs = {c["province"] for c in cs}
    no_neighbour = sum(1 for c in cs if not c["adjacent"])
    in_inst = [1.0 - c["migrant_destinations"]["outside"] for c in cs]
    return (f"{instance['name']}: {len(cs)} units, {len(prefs)} prefectures, {len(provs)} provinces, "
            f"{n:,} enrollees; coordinates recovered {info['instance_recovered']}, still missing "
            f"{info['instance_missing']}; in the provinces' graphs: Delaunay edges dropped {info['dropped']}, "
            f"re-added {info['reconnected']}, prefecture links added {info['prefecture_links']}; "
            f"units without neighbours {no_neighbour}; pruned destinations {info['pruned_destinations']}; "
            f"mean in-instance destination share {sum(in_inst) / len(in_inst):.4f}")


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
    for out, kw in jobs:
        instance, info = build(args.census, **kw)
        bt.write_atomic(out, dumps(instance))
        print(f"wrote {out}")
        print("  " + summary(instance, info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
