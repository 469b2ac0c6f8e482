"""the register 登记簿: units, rights, right holders, certificates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 15:14:01.709098
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('register_unit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unit_number', sa.String(length=28), nullable=False),
    sa.Column('parcel_number', sa.String(length=19), nullable=False),
    sa.Column('district_code', sa.String(length=6), nullable=False),
    sa.Column('address', sa.String(length=400), nullable=False),
    sa.Column('area', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('use', sa.String(length=20), nullable=False),
    sa.Column('building', sa.String(length=40), nullable=True),
    sa.Column('floor', sa.String(length=20), nullable=True),
    sa.Column('room', sa.String(length=40), nullable=True),
    sa.Column('created_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by_case', sa.String(length=40), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_register_unit')),
    sa.UniqueConstraint('unit_number', name=op.f('uq_register_unit_unit_number'))
    )
    with op.batch_alter_table('register_unit', schema=None) as batch_op:
        batch_op.create_index('ix_register_unit_parcel', ['parcel_number'], unique=False)

    op.create_table('register_right',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unit_number', sa.String(length=28), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('registered_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('case_number', sa.String(length=40), nullable=False),
    sa.Column('ended_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.Column('ended_by_case', sa.String(length=40), nullable=True),
    sa.Column('document_number', sa.String(length=200), nullable=True),
    sa.Column('queue_position', sa.Integer(), nullable=True),
    sa.Column('lapses_on', sa.Date(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['unit_number'], ['register_unit.unit_number'], name=op.f('fk_register_right_unit_number_register_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_register_right'))
    )
    with op.batch_alter_table('register_right', schema=None) as batch_op:
        batch_op.create_index('ix_register_right_case', ['case_number'], unique=False)
        batch_op.create_index('ix_register_right_document', ['document_number'], unique=False)
        batch_op.create_index('ix_register_right_lapse', ['kind', 'status', 'lapses_on'], unique=False)
        batch_op.create_index('ix_register_right_unit', ['unit_number', 'kind', 'status'], unique=False)
        batch_op.create_index('uq_register_right_current_ownership', ['unit_number'], unique=True, postgresql_where=sa.text("kind = 'ownership' AND status = 'current'"), sqlite_where=sa.text("kind = 'ownership' AND status = 'current'"))

    op.create_table('register_certificate',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('office_code', sa.String(length=12), nullable=False),
    sa.Column('province', sa.String(length=4), nullable=False),
    sa.Column('office_name', sa.String(length=40), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('serial', sa.Integer(), nullable=False),
    sa.Column('right_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unit_number', sa.String(length=28), nullable=False),
    sa.Column('case_number', sa.String(length=40), nullable=False),
    sa.Column('issued_at', storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('voided_at', storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('voided_by_case', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['right_id'], ['register_right.id'], name=op.f('fk_register_certificate_right_id_register_right')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_register_certificate')),
    sa.UniqueConstraint('number', name=op.f('uq_register_certificate_number')),
    sa.UniqueConstraint('office_code', 'kind', 'year', 'serial', name='uq_register_certificate_serial')
    )
    with op.batch_alter_table('register_certificate', schema=None) as batch_op:
        batch_op.create_index('ix_register_certificate_right', ['right_id'], unique=False)
        batch_op.create_index('ix_register_certificate_unit', ['unit_number'], unique=False)

    op.create_table('register_right_holder',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('right_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('id_type', sa.String(length=40), nullable=False),
    sa.Column('id_number', sa.String(length=64), nullable=False),
    sa.Column('share_mode', sa.String(length=10), nullable=False),
    sa.Column('share', sa.Numeric(precision=9, scale=6), nullable=True),
    sa.ForeignKeyConstraint(['right_id'], ['register_right.id'], name=op.f('fk_register_right_holder_right_id_register_right')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_register_right_holder'))
    )
    with op.batch_alter_table('register_right_holder', schema=None) as batch_op:
        batch_op.create_index('ix_register_right_holder_id_number', ['id_number'], unique=False)
        batch_op.create_index('ix_register_right_holder_right', ['right_id', 'position'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('register_right_holder', schema=None) as batch_op:
        batch_op.drop_index('ix_register_right_holder_right')
        batch_op.drop_index('ix_register_right_holder_id_number')

    op.drop_table('register_right_holder')
    with op.batch_alter_table('register_certificate', schema=None) as batch_op:
        batch_op.drop_index('ix_register_certificate_unit')
        batch_op.drop_index('ix_register_certificate_right')

    op.drop_table('register_certificate')
    with op.batch_alter_table('register_right', schema=None) as batch_op:
        batch_op.drop_index('uq_register_right_current_ownership', postgresql_where=sa.text("kind = 'ownership' AND status = 'current'"), sqlite_where=sa.text("kind = 'ownership' AND status = 'current'"))
        batch_op.drop_index('ix_register_right_unit')
        batch_op.drop_index('ix_register_right_lapse')
        batch_op.drop_index('ix_register_right_document')
        batch_op.drop_index('ix_register_right_case')

    op.drop_table('register_right')
    with op.batch_alter_table('register_unit', schema=None) as batch_op:
        batch_op.drop_index('ix_register_unit_parcel')

    op.drop_table('register_unit')
