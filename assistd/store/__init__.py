"""Storage: SQLAlchemy 2 Core tables, Alembic migrations, and one repository per resource.

Every repository is bound to one project (tenant) and adds ``project_id = :project`` to every query it
runs, so no code above this package can read or write across projects by mistake.
"""
