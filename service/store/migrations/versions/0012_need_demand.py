"""need_demand: how often each need value was asked for per day, language and key scope, and how often nothing
listed covered it (the content-gap report). Counts only, no HCP id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'need_demand',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('dimension', sa.String(length=64), nullable=False),
        sa.Column('value', sa.String(length=64), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('scope', sa.String(length=512), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('asked', sa.Integer(), nullable=False),
        sa.Column('unserved', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'dimension', 'value', 'language', 'scope', 'source'),
    )


def downgrade() -> None:
    op.drop_table('need_demand')
