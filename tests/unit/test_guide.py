"""The guides' schedules item by item: every composite part is a guide item, no item is dropped, the README's tables
are the generated ones, and a composite's report names each part's outcome and the manual checklist."""

from __future__ import annotations

from deployments.specs import README, render_readme
from upkeep.config.reviews import GUIDE_MANUAL_ITEMS
from upkeep.guide import GUIDE, PartOutcome, composite_markdown, composite_table, routine_table, unassigned_items
from upkeep.routines import COMPOSITES, MONTHLY_MAINTENANCE, QUARTERLY_MAINTENANCE, ROUTINES, parts


def test_every_composite_part_is_a_guide_item_and_every_item_names_a_known_routine() -> None:
    assert unassigned_items() == []
    assert set(GUIDE) == set(COMPOSITES)
    for composite, ids in COMPOSITES.items():
        named = {i.routine for i in GUIDE[composite]}
        assert set(ids) <= named, f"{composite}: parts with no guide item: {set(ids) - named}"
        for item in GUIDE[composite]:  # an item not done inside the composite says where it is done instead
            assert item.routine in ids or item.how, (composite, item.words)


def test_the_readme_tables_are_the_generated_ones() -> None:
    text = README.read_text()
    assert render_readme(text) == text, "run `upkeep deployments --write`"
    assert routine_table() in text and composite_table() in text
    assert all(f"| `{spec.id}` |" in text for spec in ROUTINES)


def test_a_composite_report_names_each_outcome_and_the_manual_checklist() -> None:
    outcomes = [PartOutcome(p.id, "Completed", "", 1.0) for p in parts(MONTHLY_MAINTENANCE)]
    outcomes[1] = PartOutcome(outcomes[1].routine, "Failed", "2 check(s) failed: events | count", 12.5)
    manual = [(m.item, m.owner, m.guide) for m in GUIDE_MANUAL_ITEMS]
    text = composite_markdown(MONTHLY_MAINTENANCE, "production", outcomes, manual)
    assert text.startswith("# monthly-maintenance on production\n\n**5 of 6 routines completed**; failed: verify-backup "
                           "(each ran even when an earlier one failed).")
    assert "| 2 | `verify-backup` | Failed: 2 check(s) failed: events / count | 12.5 s |" in text
    assert "| ☐ | Train staff on changed procedures | unassigned | Event Editor: Monthly Tasks |" in text
    assert "name an owner in `reviews.manual`" in text
    assert "| capacity_review | Event Manager: schedule | capacity-review |" in text
    quarterly = composite_markdown(QUARTERLY_MAINTENANCE, "staging",
                                   [PartOutcome(p.id, "Completed", "", 2.0) for p in parts(QUARTERLY_MAINTENANCE)])
    assert "**3 of 3 routines completed**." in quarterly and "For people" not in quarterly
