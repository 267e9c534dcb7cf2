"""chunks.kind: "notes" for a slide's speaker notes, kept apart from the slide's own words ("body")

Chunks stored before this revision are "body"; re-ingesting a deck splits its notes out.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 13:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='body'))


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('kind')
