"""Reading a listing a state machine kept page by page (States.Array nests each page beside the list so far)."""

from __future__ import annotations

from shared.aws import page_items


def test_kept_pages_read_in_order_with_each_item_once() -> None:
    kept = [[[[], [{"n": 1}]], [{"n": 2}, {"n": 3}]], []]
    assert page_items(kept) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_flat_list_reads_as_is_and_nothing_reads_as_empty() -> None:
    assert page_items([{"n": 1}, {"n": 2}]) == [{"n": 1}, {"n": 2}]
    assert page_items(None) == []
