"""hcp_events, hcp_records, hcp_suggestions: what doctors and reps did, each HCP's static attributes, and the
suggestions feedback names. Keyed by the CRM's pseudonymous id only.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hcp_events',
        sa.Column('id', sa.String(length=128), nullable=False),
        sa.Column('hcp_id', sa.String(length=128), nullable=False),
        sa.Column('asset_id', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=64), nullable=True),
        sa.Column('dwell_seconds', sa.Float(), nullable=True),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('suggestion_id', sa.String(length=64), nullable=True),
        sa.Column('reason', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_hcp_events_hcp_time', 'hcp_events', ['hcp_id', 'occurred_at'])
    op.create_index('ix_hcp_events_time', 'hcp_events', ['occurred_at'])
    op.create_table(
        'hcp_records',
        sa.Column('hcp_id', sa.String(length=128), nullable=False),
        sa.Column('attributes', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('hcp_id'),
    )
    op.create_table(
        'hcp_suggestions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('hcp_id', sa.String(length=128), nullable=False),
        sa.Column('asset_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_hcp_suggestions_hcp', 'hcp_suggestions', ['hcp_id'])


def downgrade() -> None:
    op.drop_table('hcp_suggestions')
    op.drop_table('hcp_records')
    op.drop_index('ix_hcp_events_time', table_name='hcp_events')
    op.drop_index('ix_hcp_events_hcp_time', table_name='hcp_events')
    op.drop_table('hcp_events')
