"""model_generations: retrained heads and calibration in the database, where every replica and worker reads them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'model_generations',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('taxonomy_key', sa.String(length=120), nullable=False),
        sa.Column('heads', sa.LargeBinary(), nullable=False),
        sa.Column('heads_sha256', sa.String(length=64), nullable=False),
        sa.Column('calibrator', sa.LargeBinary(), nullable=False),
        sa.Column('calibrator_sha256', sa.String(length=64), nullable=False),
        sa.Column('items', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_model_generations_taxonomy_key', 'model_generations', ['taxonomy_key'])


def downgrade() -> None:
    op.drop_index('ix_model_generations_taxonomy_key', table_name='model_generations')
    op.drop_table('model_generations')
