"""The SpiffWorkflow runtime. The only package that imports SpiffWorkflow."""
from engine.errors import (  # noqa: F401
    CaseNotActive,
    Conflict,
    DeploymentRejected,
    EngineError,
    InvalidInput,
    NotFound,
    NotPermitted,
    Problem,
    TaskNotReady,
)
from engine.runtime import SYSTEM, Actor, CaseRef, Engine, EngineSettings  # noqa: F401
from engine.versions import MigrationRefused  # noqa: F401
