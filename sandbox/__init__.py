"""Faithful fakes of every outside system Storehouse talks to.

`sandbox` imports nothing of Storehouse's own: it is an independent model of the outside world,
so a test that passes against it checks our clients against the wire format, not themselves.
"""
