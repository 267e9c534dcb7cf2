"""rate_limit_windows: per-key request counts per minute, shared by every API replica; job_items.outcome
widened to 120 characters (a retrain's outcome did not fit in 24 on PostgreSQL, which enforces the length)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 23:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rate_limit_windows',
        sa.Column('key_id', sa.String(length=32), primary_key=True),
        sa.Column('window', sa.BigInteger(), primary_key=True),
        sa.Column('hits', sa.Integer(), nullable=False),
    )
    with op.batch_alter_table('job_items') as batch:
        batch.alter_column('outcome', existing_type=sa.String(length=24), type_=sa.String(length=120),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('job_items') as batch:
        batch.alter_column('outcome', existing_type=sa.String(length=120), type_=sa.String(length=24),
                           existing_nullable=True)
    op.drop_table('rate_limit_windows')
