"""store_changes: a counter every write to assets or asset_tags bumps, by trigger

Readers that keep a derived in-memory copy (the matcher's tag index) compare one integer per request instead of
re-reading the tables; a trigger counts every writer (ORM, bulk statements, other processes and replicas).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ("assets", "asset_tags")
EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    op.create_table('store_changes', sa.Column('id', sa.Integer(), primary_key=True),
                    sa.Column('generation', sa.BigInteger(), nullable=False))
    op.execute("INSERT INTO store_changes (id, generation) VALUES (1, 0)")
    bump = "UPDATE store_changes SET generation = generation + 1 WHERE id = 1"
    if op.get_bind().dialect.name == "postgresql":
        # once per statement (a bulk insert of thousands of tags bumps it once)
        op.execute(f"CREATE FUNCTION bump_store_generation() RETURNS trigger AS $$ BEGIN {bump}; RETURN NULL; "
                   "END $$ LANGUAGE plpgsql")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION bump_store_generation()")
    else:  # SQLite has row triggers only
        for table in TABLES:
            for event in EVENTS:
                op.execute(f"CREATE TRIGGER {table}_{event.lower()}_changed AFTER {event} ON {table} "
                           f"BEGIN {bump}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_store_generation()")
    else:
        for table in TABLES:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{event.lower()}_changed")
    op.drop_table('store_changes')
