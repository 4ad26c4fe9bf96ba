"""The warehouse: table definitions, migrations, the one fast upsert, and query helpers.

Depends on nothing else of Storehouse's.
"""
