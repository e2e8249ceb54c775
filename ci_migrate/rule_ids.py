"""Every rule id ci-migrate reports, each documented in ``docs/rules/<id>.md``.

Used where a rule id written by a person is checked (inline ``# ci-migrate: ignore[…]`` comments).
"""

from __future__ import annotations

RULE_IDS: frozenset[str] = frozenset({
    # graph
    "CM101", "CM102", "CM103", "CM104", "CM105", "CM106", "CM107",
    # replay
    "CM201", "CM202", "CM203", "CM204",
    # drift
    "CM301", "CM302", "CM303",
    # plan
    "CM401", "CM402", "CM403", "CM404", "CM405", "CM406",
    # lint (CM520: squawk)
    "CM501", "CM502", "CM503", "CM504", "CM505", "CM506", "CM507", "CM508", "CM509", "CM510",
    "CM511", "CM512", "CM513", "CM514", "CM515", "CM520",
    # locks
    "CM601", "CM602",
    # roundtrip
    "CM701", "CM702", "CM703",
    # apply
    "CM801", "CM802", "CM803", "CM804", "CM805", "CM806", "CM807", "CM808", "CM809",
    # a check crashed
    "CM900",
})
