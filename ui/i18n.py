"""Translations: one table per language, assembled from ui/locales/<lang>/*.toml.

Each TOML file is one section (its file name), so the key ``gaussian.title``
lives in ``locales/en/gaussian.toml`` under ``title``. Strings may hold
``{name}`` fields filled by ``str.format``. Symbols and LaTeX are never translated.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

Language = Literal["vi", "en"]
LANGUAGES: tuple[str, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "vi"
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
LOCALES_DIR = Path(__file__).resolve().parent / "locales"


def _flatten(prefix: str, table: dict, out: dict[str, str]) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}"
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


@lru_cache(maxsize=None)
def load_table(lang: Language) -> dict[str, str]:
    """All strings of one language, keyed ``section.key``."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
    table: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / lang).glob("*.toml")):
        with path.open("rb") as f:
            _flatten(path.stem, tomllib.load(f), table)
    return table


class Translator:
    """``tr("section.key", **fields)`` returns the string in this language.

    A missing key raises KeyError: the tests check both tables hold the same
    keys, so a page can never show a raw key to a student.
    """

    def __init__(self, lang: Language):
        self.lang: Language = lang
        self.table = load_table(lang)

    def __call__(self, key: str, **fields: object) -> str:
        text = self.table[key]
        return text.format(**fields) if fields else text

    def has(self, key: str) -> bool:
        return key in self.table
