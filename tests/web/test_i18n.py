"""The pages' catalogues (web/pages/static/lib/i18n/<feature>.<lang>.js): every feature has a
Russian and an English file with the same keys, no empty text, the same {parameters}, and every
key the pages' scripts ask for with a literal t("...") exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "web" / "pages" / "static"
CATALOGUES = STATIC / "lib" / "i18n"
LANGS = ("ru", "en")
_BODY = re.compile(r"^\s*export default\s*(\{.*\})\s*;?\s*$", re.S)
# t("key") / t('key') / t(`key`) without interpolation; keys are dotted words
_USE = re.compile(r"""\bt\(\s*(["'`])([\w.-]+)\1""")
_PARAM = re.compile(r"\{(\w+)\}")
# comments (whole-line // and /* */ blocks) hold examples, not uses
_COMMENT = re.compile(r"/\*.*?\*/|^\s*//.*?$", re.S | re.M)


def load(path: Path) -> dict[str, str | dict[str, str]]:
    match = _BODY.match(path.read_text(encoding="utf-8"))
    assert match, f"{path.name}: must be `export default {{...}};` with a JSON object"
    data = json.loads(match.group(1))
    assert isinstance(data, dict)
    return data


def features() -> set[str]:
    return {p.name.split(".")[0] for p in CATALOGUES.glob("*.js")}


def texts(value: str | dict[str, str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value.values())


def test_every_catalogue_has_both_languages_with_the_same_keys() -> None:
    assert {"shell", "login", "board"} <= features()
    for feature in sorted(features()):
        ru, en = (load(CATALOGUES / f"{feature}.{lang}.js") for lang in LANGS)
        only_ru, only_en = sorted(set(ru) - set(en)), sorted(set(en) - set(ru))
        assert not only_ru and not only_en, f"{feature}: only in ru {only_ru}, only in en {only_en}"
        for key in ru:
            for text in texts(ru[key]) + texts(en[key]):
                assert text.strip(), f"{feature}: {key} is empty"
            params_ru = {p for x in texts(ru[key]) for p in _PARAM.findall(x)}
            params_en = {p for x in texts(en[key]) for p in _PARAM.findall(x)}
            assert params_ru == params_en, f"{feature}: {key} parameters differ"


def test_no_key_is_defined_twice_across_catalogues() -> None:
    owner: dict[str, str] = {}
    for feature in sorted(features()):
        for key in load(CATALOGUES / f"{feature}.en.js"):
            assert key not in owner, f"{key} in both {owner.get(key)} and {feature}"
            owner[key] = feature


def test_every_key_the_pages_use_exists() -> None:
    known = {key for f in features() for key in load(CATALOGUES / f"{f}.en.js")}
    used: dict[str, str] = {}
    for script in STATIC.rglob("*.js"):
        if CATALOGUES in script.parents:
            continue
        code = _COMMENT.sub("", script.read_text(encoding="utf-8"))
        for _, key in _USE.findall(code):
            used.setdefault(key, script.name)
    for html in STATIC.parent.glob("*.html"):
        for key in re.findall(r'data-i18n(?:-[\w-]+)?="([\w.-]+)"', html.read_text("utf-8")):
            used.setdefault(key, html.name)
    assert len(used) > 20  # the scan finds the pages' strings at all
    missing = {k: where for k, where in used.items() if k not in known}
    assert not missing, f"keys used but in no catalogue: {missing}"


def test_a_catalogue_without_its_pair_is_caught() -> None:
    # the parity check compares files by feature: a lone file would be a missing language
    for path in CATALOGUES.glob("*.js"):
        feature, lang, _ = path.name.split(".")
        assert lang in LANGS, path.name
        for other in LANGS:
            assert (CATALOGUES / f"{feature}.{other}.js").exists(), f"{feature}.{other}.js missing"
