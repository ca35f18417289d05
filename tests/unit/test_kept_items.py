"""Reading a listing a state machine kept page by page: the earlier pages' items nested by States.Array, then the
last page read (the API's own answer)."""

from __future__ import annotations

from shared.aws import kept_items


def test_kept_pages_read_in_order_with_each_item_once() -> None:
    listing = {"events": [[[], [{"n": 1}]], [{"n": 2}, {"n": 3}]], "page": {"Events": [{"n": 4}], "NextToken": "t"}}
    assert kept_items(listing, "Events") == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]


def test_one_page_reads_as_the_api_answered_and_nothing_reads_as_empty() -> None:
    assert kept_items({"events": [], "page": {"Events": [{"n": 1}]}}, "Events") == [{"n": 1}]
    assert kept_items(None, "Events") == []
