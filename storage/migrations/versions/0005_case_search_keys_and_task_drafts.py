"""case search keys (number, unit number, parties' ID numbers and names) and task drafts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_search_key',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_search_key_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_search_key'))
    )
    with op.batch_alter_table('case_search_key', schema=None) as batch_op:
        batch_op.create_index('ix_case_search_key_key', ['key'], unique=False,
                              postgresql_ops={'key': 'text_pattern_ops'})
        batch_op.create_index('ix_case_search_key_case', ['case_id'], unique=False)
    op.create_table('task_draft',
    sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('saved_by', sa.String(length=200), nullable=False),
    sa.Column('saved_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['human_task.id'], name=op.f('fk_task_draft_task_id_human_task')),
    sa.PrimaryKeyConstraint('task_id', name=op.f('pk_task_draft'))
    )
    # cases started before this revision: their numbers and summaries become keys
    conn = op.get_bind()
    cases = sa.table('cases', sa.column('id'), sa.column('case_number'), sa.column('summary', sa.JSON()))
    keys = sa.table('case_search_key', sa.column('case_id'), sa.column('key'))
    from domain.case_summary import search_keys
    rows = []
    for case_id, number, summary in conn.execute(sa.select(cases.c.id, cases.c.case_number, cases.c.summary)):
        rows.extend({"case_id": case_id, "key": k} for k in search_keys(number, summary or {}))
    if rows:
        conn.execute(keys.insert(), rows)


def downgrade() -> None:
    op.drop_table('task_draft')
    with op.batch_alter_table('case_search_key', schema=None) as batch_op:
        batch_op.drop_index('ix_case_search_key_case')
        batch_op.drop_index('ix_case_search_key_key')
    op.drop_table('case_search_key')
