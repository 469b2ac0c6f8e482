"""deadlines 限时办结: case clocks, their pauses (时限中止), stage times (受理/审批/出证)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 15:40:45
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_clock',
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('case_number', sa.String(length=40), nullable=False),
    sa.Column('business', sa.String(length=60), nullable=False),
    sa.Column('limit_kind', sa.String(length=10), nullable=False),
    sa.Column('limit_value', sa.Integer(), nullable=False),
    sa.Column('one_hour', sa.Boolean(), nullable=False),
    sa.Column('accepted_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('due_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('paused_since', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('pause_reason', sa.String(length=40), nullable=True),
    sa.Column('paused_seconds', sa.Integer(), nullable=False),
    sa.Column('paused_workdays', sa.Integer(), nullable=False),
    sa.Column('light', sa.String(length=10), nullable=False),
    sa.Column('light_changed_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_clock_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_clock'))
    )
    with op.batch_alter_table('case_clock', schema=None) as batch_op:
        batch_op.create_index('ix_case_clock_open', ['completed_at', 'due_at'], unique=False)

    op.create_table('case_stage_time',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('started_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('minutes', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_stage_time_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_stage_time'))
    )
    with op.batch_alter_table('case_stage_time', schema=None) as batch_op:
        batch_op.create_index('ix_case_stage_time_case', ['case_id', 'stage', 'started_at'], unique=False)
        batch_op.create_index('ix_case_stage_time_ended', ['ended_at'], unique=False)

    op.create_table('case_clock_pause',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('started_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('workdays', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['case_clock.case_id'], name=op.f('fk_case_clock_pause_case_id_case_clock')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_clock_pause'))
    )
    with op.batch_alter_table('case_clock_pause', schema=None) as batch_op:
        batch_op.create_index('ix_case_clock_pause_case', ['case_id', 'started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_clock_pause', schema=None) as batch_op:
        batch_op.drop_index('ix_case_clock_pause_case')

    op.drop_table('case_clock_pause')
    with op.batch_alter_table('case_stage_time', schema=None) as batch_op:
        batch_op.drop_index('ix_case_stage_time_ended')
        batch_op.drop_index('ix_case_stage_time_case')

    op.drop_table('case_stage_time')
    with op.batch_alter_table('case_clock', schema=None) as batch_op:
        batch_op.drop_index('ix_case_clock_open')

    op.drop_table('case_clock')
