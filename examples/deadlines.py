"""Print the Changle 2022 report deadlines and a few legal periods.

Run: ``python examples/deadlines.py``
"""

from datetime import date

from fireflow import load_plan


def main() -> None:
    plan = load_plan("changle-2022")
    for d in plan.deadlines():
        moved = " (顺延 moved)" if d.due != d.nominal else ""
        print(f"{d.id:26} {d.nominal} -> {d.due}{moved}  {' '.join(d.rules)}")
    cal = plan.calendar
    for start, n, unit in [(date(2022, 9, 30), 1, "calendar"), (date(2022, 1, 28), 3, "working")]:
        print(f"{start} + {n} {unit}: {cal.deadline(start, n, unit)}")


if __name__ == "__main__":
    main()
