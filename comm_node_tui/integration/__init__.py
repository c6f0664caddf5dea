"""Bringing the domains' work back together: what each changed (gitwork, diff), the merge
queue that lands what passes (queue), conflict warnings ahead of time (conflicts) and the
integration coordinator (coordinator). Above coordination/ (locks, the verify runner, the
message files), below engine/ (which runs the queue, the conflict check and the coordinator):
the CLI and the room call it directly too.
"""
