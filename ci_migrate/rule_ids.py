"""Every rule id ci-migrate reports: the one list, one documentation page each (docs/rules/<id>.md).

Settings (``rules: {CM106: off}``) and inline ``# ci-migrate: ignore[…]`` comments are checked
against it; tests keep it equal to the pages.
"""

from __future__ import annotations

RULE_IDS: tuple[str, ...] = (
    # graph: heads, broken history, revision files
    "CM101", "CM102", "CM103", "CM104", "CM105", "CM106", "CM107",
    # replay on the sandbox; a run the migrations stopped (guard, exit, timeout)
    "CM201", "CM202", "CM203", "CM204", "CM205", "CM206", "CM207",
    # drift between the models and the migrations
    "CM301", "CM302", "CM303",
    # plan: pending revisions against the base branch or a target
    "CM401", "CM402", "CM403", "CM404", "CM405", "CM406",
    # lint: risky operations (CM515: a suppression comment; CM516: not analysed; CM520: squawk)
    "CM501", "CM502", "CM503", "CM504", "CM505", "CM506", "CM507", "CM508", "CM509", "CM510", "CM511", "CM512",
    "CM513", "CM514", "CM515", "CM516", "CM520",
    # locks on PostgreSQL
    "CM601", "CM602", "CM603",
    # round trip (upgrade → downgrade → upgrade)
    "CM701", "CM702", "CM703",
    # apply to a target
    "CM801", "CM802", "CM803", "CM804", "CM805", "CM806", "CM807", "CM808", "CM809", "CM810",
    # a check that crashed
    "CM900",
)


def id_ranges(ids: tuple[str, ...] = RULE_IDS) -> str:
    """``'CM101-CM107, CM201-CM204, …'``: the ids as runs of consecutive numbers, for messages."""
    runs: list[list[int]] = []
    for number in sorted(int(i[2:]) for i in ids):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"CM{r[0]}" + (f"-CM{r[-1]}" if len(r) > 1 else "") for r in runs)
