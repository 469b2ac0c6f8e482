"""The JSON API's bodies as pydantic models: requests are validated with them, responses are
built through them, and the OpenAPI document's schemas are generated from them
(`webapp.api_openapi`), so the document cannot drift from what the API does.

Requests forbid unknown fields (a misspelt `expected_verison`, or an `actor` someone hoped would
be believed, is a 422 naming the field) and take numbers and texts strictly (no "3" for 3).
Times are answered in ISO 8601 with the Asia/Shanghai offset (+08:00), as the office reads them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, WithJsonSchema

from domain.clock import SHANGHAI

LocalTime = Annotated[
    datetime,
    PlainSerializer(lambda d: d.astimezone(SHANGHAI).isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-23T09:00:00+08:00"]}),
]
JsonObject = Annotated[dict[str, Any], Field(json_schema_extra={"additionalProperties": True})]
Text = Annotated[str, StringConstraints(strip_whitespace=True)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ------------------------------------------------------------------------------------ requests

class StartCase(Request):
    """Start a case of the latest deployed version of a process."""

    process_id: Text = Field(min_length=1, max_length=200, description="流程 id，如 secondhand_transfer",
                             examples=["general_registration"])
    data: JsonObject = Field(default_factory=dict, description="案件初始数据（字段名为标识符，不以 _ 开头）")
    summary: JsonObject | None = Field(default=None, description="任务列表与查询显示的摘要（申请人、不动产单元号……）")


class CompleteTask(Request):
    """Complete a task with the data its form asks for."""

    data: JsonObject = Field(default_factory=dict, description="表单数据；按任务表单（JSON Schema）校验")
    expected_version: int | None = Field(
        default=None, ge=0, description="调用方看到的案件 lock_version；案件已被他人更新时返回 409，不保存任何内容")


class SendMessage(Request):
    """Hand a message to a case (a payment callback, a court order)."""

    name: Text = Field(min_length=1, max_length=200, description="消息名，与流程图中的 message name 一致",
                       examples=["tax_paid"])
    payload: JsonObject = Field(default_factory=dict, description="消息内容")
    key: Text | None = Field(default=None, min_length=1, max_length=300,
                             description="幂等键：同一键再次发送时不重复投递（回答 duplicate=true）")


class RetryIncident(Request):
    comment: Text | None = Field(default=None, max_length=2000, description="说明（记入案件历史）")


class ResolveIncident(Request):
    comment: Text = Field(min_length=1, max_length=2000, description="处理说明（必填，记入案件历史）")
    result: JsonObject | None = Field(
        default=None, description="给出失败服务任务的结果，以此完成该任务；不给时只在案件不再等待此事件时才能关闭")


class TaskQuery(BaseModel):
    """GET /tasks: the query parameters (texts from the URL, converted)."""

    role: str | None = Field(default=None, description="只看这一岗位（须是调用者的岗位）的未认领任务与我的任务")
    mine: bool = Field(default=False, description="true：只看我已认领的任务")
    q: Text | None = Field(default=None, max_length=40, description="按案件号查找（部分匹配）")
    limit: int = Field(default=50, ge=1, le=200, description="每页条数，最多 200")
    offset: int = Field(default=0, ge=0, description="从第几条开始")


class IncidentQuery(BaseModel):
    """GET /incidents: the query parameters."""

    status: Literal["open", "resolved", "all"] = Field(default="open",
                                                       description="open 未处理 | resolved 已处理 | all")
    case_id: int | None = Field(default=None, ge=1, description="只看这一案件的事件")
    limit: int = Field(default=50, ge=1, le=200, description="每页条数，最多 200")
    offset: int = Field(default=0, ge=0, description="从第几条开始")


# ------------------------------------------------------------------------------------ answers

class Problem(Answer):
    file: str
    line: int | None = None
    element_id: str | None = None
    message: str


class FieldError(Answer):
    field: str = Field(description="出错的字段（嵌套字段以 . 连接）；请求体本身为空字符串")
    message: str


class CaseRef(Answer):
    id: int
    case_number: str = Field(examples=["2026-000001"])
    status: str = Field(description="active 办理中 | suspended 挂起 | completed 办结 | cancelled 撤销")
    lock_version: int = Field(description="乐观锁版本：办理任务时作为 expected_version 传回")


class Error(Answer):
    """Every error: a code for programs and a message for people (Chinese, with the engine's text)."""

    error: str = Field(description="错误代码，如 not_found、forbidden、conflict、invalid、unsupported_media_type",
                       examples=["conflict"])
    message: str = Field(description="给人看的说明：哪里不对、怎么办")
    fields: list[FieldError] | None = Field(default=None, description="422：每个不合格的字段")
    problems: list[Problem] | None = Field(default=None, description="部署被拒绝：每个问题（文件、行、元素）")
    case: CaseRef | None = Field(default=None, description="409：案件当前的状态与版本，刷新后可重新提交")


class Role(Answer):
    code: str
    name: str


class Me(Answer):
    login: str
    display_name: str
    office: str | None = None
    roles: list[Role]
    authenticated_by: str = Field(description="token 或 session")


class DeployedVersion(Answer):
    process_id: str
    version: int
    id: int
    sha256: str
    created: bool = Field(description="false：内容与已部署的最新版本相同，沿用该版本")


class Deployment(Answer):
    versions: list[DeployedVersion]
    created: int = Field(description="新建的版本数")


class Process(Answer):
    process_id: str
    name: str | None = None
    latest_version: int
    latest_version_id: int
    deployed_at: LocalTime
    deployed_by: str
    versions: int = Field(description="已部署的版本数")
    running_cases: int = Field(description="所有版本上办理中或挂起的案件数")


class ProcessList(Answer):
    items: list[Process]


class Task(Answer):
    id: int
    case_id: int
    case_number: str
    process_id: str
    bpmn_id: str
    name: str | None = None
    role: str | None = None
    role_name: str
    assignee: str | None = None
    form: str | None = None
    state: str = Field(description="open | completed | cancelled")
    created_at: LocalTime
    closed_at: LocalTime | None = None
    closed_by: str | None = None
    case_open_incidents: int
    summary: JsonObject
    light: str | None = Field(default=None, description="限时办结灯：green | yellow | red；案件未开始计时为 null")


class TaskList(Answer):
    items: list[Task]
    limit: int
    offset: int
    next_offset: int | None = Field(description="还有更多时，下一页的 offset")


class Incident(Answer):
    id: int
    case_id: int
    case_number: str
    bpmn_id: str | None = None
    kind: str = Field(description="service_fault | business_error | script_error | timeout | engine_error")
    message: str
    details: str | None = None
    status: str = Field(description="open | resolved")
    created_at: LocalTime
    retries: int
    resolved_by: str | None = None
    comment: str | None = None


class IncidentList(Answer):
    items: list[Incident]
    limit: int
    offset: int
    next_offset: int | None


class Remaining(Answer):
    kind: str = Field(description="workdays | minutes")
    value: float = Field(description="剩余量；负数为已超期")


class Deadline(Answer):
    """The case's time limit 限时办结 (null before acceptance starts the clock)."""

    model_config = ConfigDict(extra="allow")

    business: str
    light: str = Field(description="green | yellow | red")
    due_at: str | None = Field(description="承诺办结时间（ISO 8601，+08:00）")
    accepted_at: str | None = None
    paused: bool
    remaining: Remaining
    completed_at: str | None = None
    within_limit: bool | None = None


class Case(Answer):
    id: int
    case_number: str
    process_id: str
    process_version_id: int
    version: int | None
    status: str
    status_name: str
    status_reason: str | None = None
    open_incidents: int
    buffered_messages: int
    lock_version: int
    started_by: str
    started_at: LocalTime
    updated_at: LocalTime
    ended_at: LocalTime | None = None
    summary: JsonObject
    tasks: list[Task] = Field(description="待办任务")
    incidents: list[Incident] = Field(description="未处理的事件")
    deadline: Deadline | None
    diagram_url: str


class Completed(Answer):
    id: int = Field(description="案件 id")
    case_number: str
    status: str
    lock_version: int
    open_tasks: list[Task] = Field(description="办理后案件的待办任务")


class MessageResult(Answer):
    id: int = Field(description="消息 id")
    delivered: bool = Field(description="true：案件正在等待并已收到；false：已暂存，案件到达等待点时投递")
    duplicate: bool = Field(description="true：同一幂等键已收到过，本次未重复保存")
    case: CaseRef


class RetryResult(Answer):
    incident: Incident
    case: CaseRef


class Resolved(Answer):
    incident: Incident
    case: CaseRef
