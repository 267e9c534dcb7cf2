"""hcp opt-outs (PIPL: non-personalised recommendations)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hcp_opt_outs',
    sa.Column('hcp_id', sa.String(length=128), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('hcp_id')
    )


def downgrade() -> None:
    op.drop_table('hcp_opt_outs')
