"""The small survey project (TOML) that the quota, reminder and export tests share: one province,
its communes as strata, one census group of citizens, plus whatever section a test adds."""

from __future__ import annotations


def survey_toml(survey_id: str, title: str, form_id: str, *, communes: tuple[str, ...] = ("a",),
                extra: str = "", opens: str = "2026-08-01", closes: str = "2026-08-31",
                survey_keys: str = "") -> str:
    """`survey_keys`: more lines of the [survey] table (e.g. `grace_days = 3`); `extra`: more tables."""
    units = "".join(f'\n[[units]]\nid = "xa-{c}"\nname = "Xã {c.upper()}"\nlevel = "commune"\nparent = "tinh"\n'
                    for c in communes)
    return f"""\
[survey]
id = "{survey_id}"
title = "{title}"
index_year = 2026
opens = {opens}
closes = {closes}
{survey_keys}
levels = ["province", "commune"]
strata = ["commune"]

[[units]]
id = "tinh"
name = "Tỉnh"
level = "province"
{units}
[groups.citizen]
label = {{ vi = "Người dân", en = "Citizens" }}
form_id = "{form_id}"
allocation = {{ method = "census", reserve = 0 }}

{extra}"""
