"""task list indexes: a post's unclaimed open tasks (partial), running cases per version

Measured with bench/tasklist.py at 10^6 stored cases (PostgreSQL, ~32k of them running): the task
list page's counts per post walked every open task of the user's posts through the heap (6–26 ms),
and the running-case count per version behind the business names scanned the whole
(process_version_id, status) index (80–115 ms). With these two indexes they read only the open
unclaimed tasks' entries and the running cases' entries (2–3 ms, ~12 ms); the page's data went from
p50 124 / p95 190 ms to p50 22 / p95 50 ms on the same, busy machine.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 17:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

UNCLAIMED = "state = 'open' AND assignee IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_status_version', ['status', 'process_version_id'], unique=False)
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.create_index('ix_human_task_unclaimed', ['role', 'created_at', 'id'], unique=False,
                              postgresql_where=sa.text(UNCLAIMED), sqlite_where=sa.text(UNCLAIMED))


def downgrade() -> None:
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_index('ix_human_task_unclaimed', postgresql_where=sa.text(UNCLAIMED),
                            sqlite_where=sa.text(UNCLAIMED))
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_status_version')
