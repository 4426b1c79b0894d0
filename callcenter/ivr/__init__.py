"""The IVR engine: services (DNIS), flows as YAML data, a pure stepper and its async shell.

Public entry points::

    from callcenter.ivr import IvrEngine, load_flows, load_services
    engine = IvrEngine(load_flows("ivr_flows", queues), load_services("config/services.yaml"),
                       emit=bus.publish, lookups=crm_lookups)
    result = await engine.run(MediaCallPort(...), contact_id=cid)
"""

from callcenter.ivr.flows import FlowIssue, FlowLoadError, FlowSet, load_flows
from callcenter.ivr.ports import (
    CallEnded,
    CallPort,
    CustomerInfo,
    InputSpec,
    Lookups,
    OrderInfo,
    Recording,
    StaticLookups,
    UserInput,
)
from callcenter.ivr.runner import IvrEngine
from callcenter.ivr.services import Service, ServicesConfig, load_services
from callcenter.ivr.stepper import FlowStepper, IvrResult

__all__ = [
    "CallEnded",
    "CallPort",
    "CustomerInfo",
    "FlowIssue",
    "FlowLoadError",
    "FlowSet",
    "FlowStepper",
    "InputSpec",
    "IvrEngine",
    "IvrResult",
    "Lookups",
    "OrderInfo",
    "Recording",
    "Service",
    "ServicesConfig",
    "StaticLookups",
    "UserInput",
    "load_flows",
    "load_services",
]
