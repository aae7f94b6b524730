"""A font for Chinese county names in figures.

matplotlib ships DejaVu fonts only, which have no CJK glyphs: a name such as
固始县 would be drawn as empty boxes. The optional extra ``pooling[maps]``
installs ``manimgx-fonts-cjk`` (Noto Sans CJK, SIL Open Font License 1.1), a
wheel holding the font file; without it a CJK-capable font installed on the
system (Noto Sans CJK, Source Han Sans, WenQuanYi, ...) is used when
matplotlib finds one. `cjk_family` says which family draws CJK text, or None.

Figures list DejaVu Sans first and the CJK family second (`figure_font`):
matplotlib falls back glyph by glyph, so Latin text looks as before and only
CJK characters come from the CJK font.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import importlib.util

FONT_PACKAGE = "manimgx_fonts_cjk"
"""The wheel (extra ``pooling[maps]``) that carries Noto Sans CJK."""
FONT_FILE = "NotoSansCJK-VF.otf.ttc"
PACKAGED_FAMILY = "Noto Sans CJK SC"
"""The simplified-Chinese face of the collection: county names are in simplified characters."""
SYSTEM_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                   "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN")
"""CJK-capable families looked for among the system's fonts when the extra is not installed."""
LATIN_FAMILY = "DejaVu Sans"
"""matplotlib's own font: first in the list, so Latin text is drawn as without a CJK font."""
PROBE_TEXT = "固始县"
"""Characters a CJK family must have to be used (checked in the font's character map)."""


def has_cjk(text: str) -> bool:
    """Whether `text` holds characters beyond Latin (which DejaVu cannot be trusted to draw)."""
    return any(ord(ch) > 0x24F for ch in str(text))


def _covers(path: str, text: str) -> bool:
    from matplotlib.ft2font import FT2Font
    try:
        charmap = FT2Font(path).get_charmap()
    except (OSError, RuntimeError):
        return False
    return all(ord(ch) in charmap for ch in text)


@functools.cache
def cjk_family() -> str | None:
    """The font family that draws CJK text in figures: the packaged Noto Sans
    CJK (registered with matplotlib on first use) or a system family that has
    the glyphs of `PROBE_TEXT`; None when there is none."""
    from matplotlib import font_manager
    if importlib.util.find_spec(FONT_PACKAGE) is not None:
        path = str(importlib.resources.files(FONT_PACKAGE) / FONT_FILE)
        font_manager.fontManager.addfont(path)
        # The collection is a variable font whose default instance reports weight 100: record its
        # faces as regular and bold so that both find it without a findfont warning.
        entries = []
        for entry in font_manager.fontManager.ttflist:
            if entry.fname == path and dataclasses.is_dataclass(entry):
                entries += [dataclasses.replace(entry, weight=400), dataclasses.replace(entry, weight=700)]
            else:
                entries.append(entry)
        font_manager.fontManager.ttflist = entries
        cached = getattr(font_manager.fontManager, "_findfont_cached", None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
        # matplotlib versions that read one face of a collection register only its first (JP) face:
        # its Han glyphs draw Chinese names too, with Japanese forms for a few characters.
        families = [entry.name for entry in entries if entry.fname == path]
        if PACKAGED_FAMILY in families:
            return PACKAGED_FAMILY
        if families:
            return families[0]
    for family in SYSTEM_FAMILIES:
        for entry in font_manager.fontManager.ttflist:
            if entry.name == family and _covers(entry.fname, PROBE_TEXT):
                return family
    return None


def figure_font() -> dict[str, list[str]]:
    """matplotlib settings putting the CJK family after DejaVu Sans (empty without one)."""
    family = cjk_family()
    return {"font.family": [LATIN_FAMILY, family]} if family else {}


def page_font(text: str) -> tuple[bytes, str] | None:
    """The packaged Noto Sans CJK SC cut down to exactly the CJK characters of `text` (`has_cjk`),
    as (font file, CSS format): WOFF2 when fontTools can use brotli, else WOFF (zlib). The face stays
    variable (its weight axis; pinning a weight takes fontTools minutes on this font); None without
    the extra or when `text` has no CJK character. Embedded in the national page so that names render
    with no system CJK font."""
    if importlib.util.find_spec(FONT_PACKAGE) is None:
        return None
    chars = sorted({ord(ch) for ch in str(text) if has_cjk(ch) and not ch.isspace()})
    if not chars:
        return None
    import io

    from fontTools import subset
    from fontTools.ttLib import TTCollection, TTFont
    path = str(importlib.resources.files(FONT_PACKAGE) / FONT_FILE)
    names = [font["name"].getDebugName(1) for font in TTCollection(path, lazy=True).fonts]
    font = TTFont(path, fontNumber=names.index(PACKAGED_FAMILY) if PACKAGED_FAMILY in names else 0)
    options = subset.Options()
    options.layout_features, options.hinting, options.notdef_outline = [], False, True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=chars)
    subsetter.subset(font)
    font.flavor = "woff2" if importlib.util.find_spec("brotli") is not None else "woff"
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue(), font.flavor
