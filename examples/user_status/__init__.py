"""User-status, the second service of Goka's blog post, next to click-count.

The group ``user-status`` consumes status updates (``{"status": "..."}``, JSON, keyed by
user), joins the click-count table and keeps per user the latest status together with the
user's click count at the time of the update (``{"status": ..., "clicks": ...}``, JSON).
"""

from examples.user_status.app import define_user_status, update_status

__all__ = ["define_user_status", "update_status"]
