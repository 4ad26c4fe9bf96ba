"""People: users, their roles and permissions per tenant, sign-in, and the staff's reads and writes.

Domain services used by the staff API (``api/routes/staff_*``) and the CLI (``storehouse users``).
"""
