"""The one pager of every List*/Describe* operation: AWS's filters, sort orders and NextToken."""

from __future__ import annotations

from typing import Any, Mapping

DEFAULT_PAGE_SIZE = 100

# List* request member -> (row member it bounds, keep the row if ...)
_TIME_BOUNDS = (
    ("CreationTimeAfter", "CreationTime", lambda value, bound: value > bound),
    ("CreationTimeBefore", "CreationTime", lambda value, bound: value < bound),
    ("LastModifiedTimeAfter", "LastModifiedTime", lambda value, bound: value > bound),
    ("LastModifiedTimeBefore", "LastModifiedTime", lambda value, bound: value < bound),
    ("ScheduledTimeAfter", "ScheduledTime", lambda value, bound: value > bound),
    ("ScheduledTimeBefore", "ScheduledTime", lambda value, bound: value < bound),
)


def page_results(rows: list[dict[str, Any]], params: Mapping[str, Any], name_key: str,
                 equal: Mapping[str, str] | None = None,
                 page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[dict], dict]:
    """Filter, sort and paginate a List* result as AWS does.

    ``NameContains`` matches ``name_key`` case-insensitively; ``*TimeAfter``/``*TimeBefore`` bound
    the matching row members; ``equal`` maps request members to the row member they must equal
    (``{"StatusEquals": "EndpointStatus"}``). Returns the page and ``{"NextToken": ...}`` or ``{}``.
    """
    contains = params.get("NameContains")
    if contains:
        rows = [r for r in rows if contains.lower() in r[name_key].lower()]
    for param, key in (equal or {}).items():
        if params.get(param) is not None:
            rows = [r for r in rows if r.get(key) == params[param]]
    for param, key, keep in _TIME_BOUNDS:
        if params.get(param) is not None:
            rows = [r for r in rows if key in r and keep(r[key], float(params[param]))]
    sort_by = params.get("SortBy", "CreationTime")
    sort_key = name_key if sort_by == "Name" else sort_by
    rows = sorted(rows, key=lambda r: r.get(sort_key, 0), reverse=params.get("SortOrder", "Descending") == "Descending")
    return offset_page(rows, params.get("NextToken"), int(params.get("MaxResults") or page_size))


def offset_page(rows: list, next_token: Any, size: int) -> tuple[list, dict]:
    """The page of ``size`` rows a ``NextToken`` (the offset, as a string; none: the start) points at, and
    ``{"NextToken": ...}`` for the next page, or ``{}`` on the last one."""
    start = int(next_token or 0)
    token = {"NextToken": str(start + size)} if start + size < len(rows) else {}
    return rows[start:start + size], token
