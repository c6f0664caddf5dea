"""Bringing the domains' work back together: what each changed (gitwork, diff), the merge
queue that lands what passes (queue), and, from the conflicts branch, the warnings and the
integration coordinator. Above coordination/ (locks, the verify runner, the message files),
below engine/ (which runs the queue on a timer): the CLI and the room call it directly too.
"""
