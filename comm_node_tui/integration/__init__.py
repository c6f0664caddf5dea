"""Bringing the domains' work together: conflict warnings ahead of time, the integration
coordinator (and, from the review branch, the diff and the merge queue)."""
