"""A plan for another district: 鼓楼区 2023, made with ``plan new`` and edited (docs/adapting.md).

The 鼓楼区 campaign here is made up for the tutorial: it keeps Changle's phase windows, spot-checks
15% of communities, gives stairwell goods 5 days and fire-lane cars 2, lets the district emergency
management bureau (区应急管理局) join re-checks and sign off, and has e-bike charging in stairwells
led by the fire brigade.  Run it to print the plan (or ``python gulou_2023.py FILE`` to write it);
examples/scenarios/gulou-2023.plan.yaml is its output.
"""

from __future__ import annotations

import sys
from typing import Any

from fireflow import load_plan
from fireflow.plan import validate_plan_data
from fireflow.plan.derive import derive_plan

HEADER = """\
# 鼓楼区 2023（示例，虚构）: made with
#   fireflow plan new --from changle-2022 --district 福州市鼓楼区 \\
#     --district-en "Gulou District, Fuzhou" --year 2023
# and edited as docs/adapting.md says (examples/gulou_2023.py does the same edits).
"""


def replace_in(item: dict[str, Any], old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in every text field of one entry (a rule, a phase)."""
    for key, value in item.items():
        if isinstance(value, str):
            item[key] = value.replace(old, new)
        elif isinstance(value, dict):
            replace_in(value, old, new)


def build() -> str:
    """The 鼓楼区 2023 plan as YAML text."""
    # 1. plan new: dates moved to 2023, every Changle text listed under review:
    plan, review = derive_plan(
        load_plan("changle-2022"),
        district="福州市鼓楼区",
        district_en="Gulou District, Fuzhou",
        year=2023,
    )
    data = plan.to_data()
    rules = {r["id"]: r for r in data["rules"]}

    # 2. name, source and the Annex 4 title name the new district
    data["name"] = {
        "zh": "福州市鼓楼区物业小区消防通道专项联合整治行动方案",
        "en": "Gulou District (Fuzhou) joint campaign against blocked fire passages "
        "in property-managed communities",
    }
    data["source"] = "福州市鼓楼区物业小区消防通道专项联合整治行动方案（2023年1月起，示例）"
    data["forms"][3]["names"] = ["鼓楼区物业在管小区消防专项联合整治初步摸底"]

    # 3. the year in the text of R-CAL-PHASES (the windows keep their month and day)
    replace_in(rules["R-CAL-PHASES"], "2022", "2023")

    # 4. the spot check: 15%, so 31 communities give 5 (rounded up)
    data["settings"]["spot_check"]["ratio"] = 0.15
    for item in (data["phases"][3], rules["R-SPOT-RATIO"], rules["R-TKT-OPEN"]):
        replace_in(item, "10%", "15%")
    replace_in(rules["R-SPOT-RATIO"], "为4个", "为5个")
    replace_in(rules["R-SPOT-RATIO"], "is 4", "is 5")

    # 5. other rectification periods
    data["settings"]["rectification_days"].update(evacuation_blocked=5, fire_lane_vehicle=2)

    # 6. a new agency that joins re-checks and signs off
    data["agencies"].append(
        {
            "id": "emergency",
            "name": {"zh": "区应急管理局", "en": "District Emergency Management Bureau"},
            "level": "district",
        }
    )
    sign_off = next(a for a in data["authority"] if a["trigger"] == "sign_off")
    sign_off["agencies"] = ["emergency"]

    # 7. e-bike charging in stairwells is led by the fire brigade
    data["routes"].insert(
        1,
        {
            "id": "ebike_charging_inside",
            "category": "evacuation_blocked",
            "location": "inside",
            "subtypes": ["ebike_charging"],
            "rectifier": "property",
            "lead": "fire",
            "supervisor": "fire",
            "cooperating": ["town", "committee", "property"],
            "recheck_lead": "town",
            "enforcers": ["fire", "police"],
            "rules": ["R-ROUTE-EVAC"],
            "note": "鼓楼区（示例）：楼道电动车充电由消防牵头",
        },
    )

    # 8. every review entry checked: the dates and the 5 days are the same in 2023
    assert {r.kind for r in review} <= {"id", "district", "year", "date", "number"}
    data["review"] = []
    return HEADER + validate_plan_data(data, "gulou-2023").to_yaml()


if __name__ == "__main__":
    text = build()
    if len(sys.argv) > 1:
        from fireflow import output

        output.write_text(sys.argv[1], text)
    else:
        sys.stdout.write(text)
