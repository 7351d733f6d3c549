"""Click-count, Goka's first example: count the clicks of every user in a group table.

The group ``G`` consumes the clicks topic and keeps per user key the number of clicks in the
table ``G-table`` (Int64 codec); a View prints it.
"""

from examples.clickcount.app import count_click, define_clickcount

__all__ = ["count_click", "define_clickcount"]
