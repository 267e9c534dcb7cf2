"""talking-point follow-ups (LLM points delivered after the request's deadline)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'talking_point_followups',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('key_id', sa.String(64), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('response', sa.JSON(), nullable=True),
        sa.Column('error', sa.String(200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_talking_point_followups_key_id', 'talking_point_followups', ['key_id'])
    op.create_index('ix_talking_point_followups_expires_at', 'talking_point_followups', ['expires_at'])


def downgrade() -> None:
    op.drop_table('talking_point_followups')
