"""Bulk: a CSV of indicators in; every row enriched, with a preview of what leaves the machine first."""

from ui.bulk_view import bulk_page

bulk_page()
