"""The runbook query built from what the engine found (``runbook_index.evidence_query``)."""

from __future__ import annotations

from opsagent.evidence.runbook_index import EVIDENCE_LINE_WORDS, evidence_query


def test_numbers_times_counts_and_placeholders_are_left_out() -> None:
    query = evidence_query(
        "errors-code",
        "ts-contacts-service",
        [
            "error log template new, 20x, +3.9 sd: <*> ERROR c.s.ContactsServiceImpl#37 [findContacts]",
            "p99 rose from 0.02384 to 0.4875 (221.8 robust sd) from 08:48:10, 12% of 30ms",
        ],
    )
    assert query == (
        "errors-code problem in ts-contacts-service: error log template new sd "
        "c.s.ContactsServiceImpl#37 findContacts; p99 rose from to robust of"
    )


def test_each_word_counts_once_whatever_its_case_and_each_line_gives_at_most_its_share() -> None:
    long_line = " ".join(f"word{chr(97 + i)}" for i in range(EVIDENCE_LINE_WORDS + 5))
    query = evidence_query("cpu", "carts", [long_line, "WORDA cpu_usage rose"])
    first, second = query.split(": ", 1)[1].split("; ")
    assert len(first.split()) == EVIDENCE_LINE_WORDS
    # "WORDA" was said by the first line already (case aside)
    assert second == "cpu_usage rose"


def test_a_line_of_numbers_only_adds_nothing() -> None:
    assert evidence_query("memory", "cart", ["1.5 -> 3.0 (+4.2)"]) == "memory problem in cart"
