"""The departments' HTTP services, for tests and demos: sandboxes served over the clients' API, with faults.

- `app.create_app(department, service, faults)`: a Flask app serving one implementation.
- `faults`: latency, errors, hangs and dropped answers, seeded and changeable at run time.
- `server.start_simulators(db, ...)` / `server.serve_apps(apps)`: run them on loopback in threads.
- `onewindow simulators` starts all four for a demo and prints the variables to use them.
"""
from adapters.simulators.app import DEPARTMENTS, create_app
from adapters.simulators.faults import FaultConfig, FaultInjector
from adapters.simulators.server import RunningSimulators, serve_apps, start_simulators

__all__ = ["DEPARTMENTS", "FaultConfig", "FaultInjector", "RunningSimulators", "create_app", "serve_apps",
           "start_simulators"]
