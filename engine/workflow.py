"""API-format workflows: parsing and validation, reporting every problem at once in ComfyUI's shape.

`validate_prompt` never raises for bad input. It returns a ValidationReport whose `workflow` is
ready for the executor (constants coerced, links resolved) and whose `response()` is ComfyUI's
400 body. Validation is linear in the graph: no recursion over links.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import inspect
from dataclasses import dataclass, field
from graphlib import CycleError
from typing import Any

from .errors import WorkflowError, WorkflowIssue
from .graph import ancestors, consumers_of, downstream, nodes_in_cycles, topological_order
from .registry import NodeRegistry, SchemaSnapshot
from .schema import InputSpec, NodeSchema, types_match
from .values import CoercionError, coerce, is_link, short_repr

# The shape of an API-format workflow, as a JSON Schema. The server checks request bodies with
# jsonschema against it; `_shape_issues` below applies the same rules with the standard library.
API_WORKFLOW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Diffgraph API-format workflow",
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "required": ["class_type"],
        "properties": {
            "class_type": {"type": "string", "minLength": 1},
            "inputs": {"type": "object"},
            "_meta": {"type": "object"},
        },
    },
}


@dataclass
class NodeSpec:
    """One node of a validated workflow."""

    id: str
    class_type: str
    schema: NodeSchema
    constants: dict[str, Any] = field(default_factory=dict)
    links: dict[str, tuple[str, int]] = field(default_factory=dict)

    def dependencies(self, include_lazy: bool = True) -> list[str]:
        if include_lazy:
            return [src for src, _ in self.links.values()]
        return [src for name, (src, _) in self.links.items() if not self.is_lazy(name)]

    def is_lazy(self, name: str) -> bool:
        spec = self.schema.input(name)
        return bool(spec and spec.lazy)


@dataclass
class Workflow:
    """A validated workflow: its nodes (by id), the output nodes to run, and the original prompt."""

    nodes: dict[str, NodeSpec]
    outputs: list[str]
    prompt: dict[str, Any]
    order: list[str] = field(default_factory=list)  # dependencies first

    def deps(self) -> dict[str, list[str]]:
        return {nid: spec.dependencies() for nid, spec in self.nodes.items()}


@dataclass
class ValidationReport:
    """The outcome of validation. `ok` when at least one requested output is runnable."""

    workflow: Workflow | None
    outputs: list[str]
    issues: list[WorkflowIssue]
    error: dict[str, Any] | None
    node_errors: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.error is None

    def response(self) -> dict[str, Any]:
        """ComfyUI's body: `{"error": ..., "node_errors": ...}` (error is None when ok)."""
        return {"error": self.error, "node_errors": self.node_errors}

    def raise_for_errors(self) -> Workflow:
        if self.error is not None or self.workflow is None:
            raise WorkflowError(self.issues, self.response())
        return self.workflow

    def text(self) -> str:
        """Every problem, one per line, for terminals."""
        lines = [f"{self.error['message']}: {self.error['details']}".rstrip(": ")] if self.error else []
        listed = {err["message"] for entry in self.node_errors.values() for err in entry["errors"]}
        if self.error and self.error["message"] in listed:
            lines = []  # the same problem is printed under its node below
        for nid, entry in self.node_errors.items():
            for err in entry["errors"]:
                sep = " " if err["message"].endswith(".") else ": "
                lines.append(f"  node {nid} ({entry['class_type']}): {err['message']}{sep}{err['details']}".rstrip())
        return "\n".join(lines)


def _top_error(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": code, "message": message, "details": details, "extra_info": {}}


def validate_prompt(prompt: Any, registry: NodeRegistry, targets: list[str] | None = None,
                    snapshot: SchemaSnapshot | None = None) -> ValidationReport:
    """Validate an API-format workflow; collect every problem (see module docstring)."""
    snap = snapshot or registry.snapshot()
    if not isinstance(prompt, dict):
        err = _top_error("invalid_prompt", "Invalid prompt",
                         f"a workflow must be a JSON object of nodes, got {type(prompt).__name__}")
        return ValidationReport(None, [], [], err, {})
    issues: list[WorkflowIssue] = _shape_issues(prompt, snap)
    unknown = [i for i in issues if i.code == "unknown_class_type"]
    if len(unknown) < len(issues):
        return _report_invalid_prompt(prompt, [_as_invalid_prompt(i) for i in issues])
    if unknown:
        return _report_unknown_classes(prompt, registry, targets, snap, unknown)
    nodes = {str(nid): NodeSpec(str(nid), node["class_type"], snap.get(node["class_type"]))
             for nid, node in prompt.items()}
    outputs = [nid for nid, spec in nodes.items() if spec.schema.output_node]
    if targets is not None:
        missing = [t for t in targets if str(t) not in nodes]
        if missing:
            err = _top_error("invalid_prompt", "Invalid partial_execution_targets",
                             f"target node(s) {', '.join(map(repr, missing))} are not in the workflow")
            return ValidationReport(None, [], [], err, {})
        outputs = [str(t) for t in dict.fromkeys(targets)]
    if not outputs:
        err = _top_error("prompt_no_outputs", "Prompt has no outputs",
                         "add an output node (SaveImage, PreviewImage, ...) or name targets to run")
        return ValidationReport(None, [], [], err, {})
    per_node: dict[str, list[WorkflowIssue]] = {}
    for nid, spec in nodes.items():
        per_node[nid] = _check_node(spec, prompt[nid].get("inputs") or {}, nodes)
    deps = {nid: spec.dependencies() for nid, spec in nodes.items()}
    needed = ancestors(outputs, deps)
    try:  # the common case, no cycle, costs one graphlib pass
        order = topological_order(needed, deps)
    except CycleError:
        order = []
        for nid in nodes_in_cycles(needed, deps):
            per_node[nid].append(WorkflowIssue(nid, None, "dependency_cycle", "Dependency cycle detected",
                                               f"node {nid} ({nodes[nid].class_type}) is part of a dependency cycle"))
    return _assemble(prompt, nodes, outputs, needed, deps, per_node, order)


def _shape_issues(prompt: dict[str, Any], snap: SchemaSnapshot) -> list[WorkflowIssue]:
    issues = []
    for nid, node in prompt.items():
        if not isinstance(node, dict):
            issues.append(WorkflowIssue(str(nid), None, "invalid_prompt", "Invalid prompt",
                                        f"node {nid!r} must be an object with class_type and inputs"))
        elif not isinstance(node.get("class_type"), str) or not node.get("class_type"):
            issues.append(WorkflowIssue(str(nid), None, "invalid_prompt", "Invalid prompt",
                                        f"node {nid!r} has no class_type; cannot execute it"))
        elif node["class_type"] not in snap:
            issues.append(_unknown_class_issue(str(nid), node["class_type"], snap))
        elif not isinstance(node.get("inputs", {}), dict):
            issues.append(WorkflowIssue(str(nid), None, "invalid_prompt", "Invalid prompt",
                                        f"node {nid!r}: inputs must be an object"))
    return issues


def _unknown_class_issue(nid: str, class_type: str, snap: SchemaSnapshot) -> WorkflowIssue:
    """ComfyUI's message for an unknown class, with the nearest registered names as a suggestion.

    Coded `unknown_class_type` only while validating; reported as ComfyUI's `invalid_prompt`."""
    close = difflib.get_close_matches(class_type, snap.registry.names(), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return WorkflowIssue(nid, None, "unknown_class_type", f"Cannot execute because node {class_type} does not exist.",
                         f"Node ID '#{nid}': {class_type!r} is not a registered node type{hint}")


def _as_invalid_prompt(issue: WorkflowIssue) -> WorkflowIssue:
    if issue.code != "unknown_class_type":
        return issue
    return WorkflowIssue(issue.node_id, issue.input, "invalid_prompt", issue.message, issue.details, issue.extra_info)


def _report_unknown_classes(prompt: dict[str, Any], registry: NodeRegistry, targets: list[str] | None,
                            snap: SchemaSnapshot, unknown: list[WorkflowIssue]) -> ValidationReport:
    """Unknown node types make the prompt invalid (ComfyUI's `invalid_prompt`), but the rest of the graph
    is still validated so every problem is reported at once; links into unknown nodes are not errors."""
    missing = {i.node_id for i in unknown}
    by_id = {str(nid): node for nid, node in prompt.items()}
    known = {nid: node for nid, node in by_id.items() if nid not in missing}
    if targets is None:  # the known outputs, and what feeds the unknown nodes (it would run for them)
        feeding = [str(v[0]) for i in unknown for v in (by_id[i.node_id].get("inputs") or {}).values()
                   if is_link(v) and str(v[0]) in known]
        targets = [nid for nid, node in known.items() if snap.get(node["class_type"]).output_node] + feeding
    kept = list(dict.fromkeys(str(t) for t in targets if str(t) not in missing))
    rest = validate_prompt(known, registry, kept, snap) if known and kept else None
    issues = [_as_invalid_prompt(i) for i in unknown]
    report = _report_invalid_prompt(prompt, issues)
    for nid, entry in (rest.node_errors if rest else {}).items():
        errors = [e for e in entry["errors"]
                  if str((e["extra_info"].get("linked_node") or [None])[0]) not in missing]
        if errors:
            report.node_errors[nid] = {**entry, "errors": errors}
            report.issues.extend(i for i in rest.issues if i.node_id == nid and i.to_dict() in errors)
    return report


def _report_invalid_prompt(prompt: dict[str, Any], issues: list[WorkflowIssue]) -> ValidationReport:
    node_errors: dict[str, Any] = {}
    for issue in issues:
        node = prompt.get(issue.node_id) if issue.node_id in prompt else None
        class_type = node.get("class_type") if isinstance(node, dict) else None
        entry = node_errors.setdefault(issue.node_id, {"errors": [], "dependent_outputs": [],
                                                        "class_type": class_type})
        entry["errors"].append(issue.to_dict())
    first = issues[0]
    err = _top_error("invalid_prompt", first.message, first.details)
    return ValidationReport(None, [], issues, err, node_errors)


def _check_node(spec: NodeSpec, raw: dict[str, Any], nodes: dict[str, NodeSpec]) -> list[WorkflowIssue]:
    """Check one node's inputs; fills spec.constants/spec.links. Returns its issues."""
    issues: list[WorkflowIssue] = []
    schema = spec.schema
    skip_checks = _validate_inputs_params(schema)
    for inp in schema.inputs:
        if inp.section == "hidden":
            continue
        label = f"{schema.name} #{spec.id}: {inp.name}"
        if inp.name not in raw:
            if inp.section == "required":
                issues.append(WorkflowIssue(spec.id, inp.name, "required_input_missing",
                                            "Required input is missing", f"{label} is required but missing",
                                            {"input_name": inp.name}))
            continue
        value = raw[inp.name]
        if is_link(value):
            _check_link(spec, inp, value, nodes, issues, label)
        elif isinstance(value, (list, tuple)):  # raw lists must be {"__value__": [...]}
            issues.append(WorkflowIssue(spec.id, inp.name, "bad_linked_input",
                                        "Bad linked input, must be a length-2 list of [string, integer]",
                                        f"{label}: expected a link to a {inp.type_name} output, got "
                                        f"{short_repr(value)}", {"input_name": inp.name}))
        elif not inp.is_widget:  # "*", "BOOL", custom types: passed as given; VALIDATE_INPUTS decides
            spec.constants[inp.name] = value
        else:
            _check_constant(spec, inp, value, issues, label, inp.name in skip_checks)
    declared = {i.name for i in schema.inputs}
    for name, value in raw.items():  # links to undeclared names feed dynamic-input nodes
        if name not in declared and is_link(value):
            _check_link(spec, None, value, nodes, issues, f"{schema.name} #{spec.id}: {name}", name)
    if not issues and schema.validate_inputs_params is not None:
        issues.extend(_custom_validation(spec, nodes))
    return issues


def _check_link(spec: NodeSpec, inp: InputSpec | None, value: list, nodes: dict[str, NodeSpec],
                issues: list[WorkflowIssue], label: str, name: str | None = None) -> None:
    name = name or (inp.name if inp else "")
    src_id, slot = str(value[0]), int(value[1])
    src = nodes.get(src_id)
    if src is None:
        issues.append(WorkflowIssue(spec.id, name, "bad_linked_input", "Linked node does not exist",
                                    f"{label} links to node {src_id!r}, which is not in the workflow",
                                    {"input_name": name, "linked_node": [src_id, slot]}))
        return
    types = src.schema.output_types
    if not 0 <= slot < len(types) or slot != value[1]:
        issues.append(WorkflowIssue(spec.id, name, "bad_linked_input", "Linked output does not exist",
                                    f"{label} links to output {value[1]!r} of node {src_id} "
                                    f"({src.class_type}), which has {len(types)} output(s)",
                                    {"input_name": name, "linked_node": [src_id, value[1]]}))
        return
    spec.links[name] = (src_id, slot)
    if inp is None or _skips_type_check(spec.schema):
        return
    produced = types[slot]
    produced_name = "COMBO" if isinstance(produced, (list, tuple)) else produced
    if not types_match(produced_name, inp.type_name):
        issues.append(WorkflowIssue(
            spec.id, name, "return_type_mismatch", "Return type mismatch between linked nodes",
            f"{label} expects {inp.type_name} but node {src_id} ({src.class_type}) output {slot} gives "
            f"{produced_name}",
            {"input_name": name, "input_config": [inp.type_name, inp.options],
             "received_type": produced_name, "linked_node": [src_id, slot]}))


def _check_constant(spec: NodeSpec, inp: InputSpec, value: Any, issues: list[WorkflowIssue], label: str,
                    skip_range: bool) -> None:
    if isinstance(value, dict) and set(value) == {"__value__"}:
        value = value["__value__"]
    try:
        value = coerce(inp, value)
    except CoercionError as exc:
        issues.append(WorkflowIssue(spec.id, inp.name, "invalid_input_type",
                                    f"Failed to convert an input value to a {inp.type_name} value",
                                    f"{label}: {exc}", {"input_name": inp.name, "received_value": value}))
        return
    spec.constants[inp.name] = value
    if skip_range:
        return
    extra = {"input_name": inp.name, "input_config": [inp.type_name, inp.options], "received_value": value}
    lo, hi = inp.options.get("min"), inp.options.get("max")
    if inp.type_name in ("INT", "FLOAT") and lo is not None and value < lo:
        issues.append(WorkflowIssue(spec.id, inp.name, "value_smaller_than_min",
                                    f"Value {value} smaller than min of {lo}",
                                    f"{label}: {value!r} is below the minimum {lo!r}", extra))
    if inp.type_name in ("INT", "FLOAT") and hi is not None and value > hi:
        issues.append(WorkflowIssue(spec.id, inp.name, "value_bigger_than_max",
                                    f"Value {value} bigger than max of {hi}",
                                    f"{label}: {value!r} is above the maximum {hi!r}", extra))
    choices = inp.choices
    if choices is not None and value not in choices:
        shown = f"(list of length {len(choices)})" if len(choices) > 20 else repr(choices)
        extra["input_config"] = None if len(choices) > 20 else extra["input_config"]
        issues.append(WorkflowIssue(spec.id, inp.name, "value_not_in_list", "Value not in list",
                                    f"{label}: {value!r} not in {shown}", extra))


def _validate_inputs_params(schema: NodeSchema) -> frozenset[str]:
    """Inputs whose range/combo checks ComfyUI leaves to VALIDATE_INPUTS (named in its signature)."""
    return schema.validate_inputs_params or frozenset()


def _skips_type_check(schema: NodeSchema) -> bool:
    return "input_types" in (schema.validate_inputs_params or ())


def _custom_validation(spec: NodeSpec, nodes: dict[str, NodeSpec]) -> list[WorkflowIssue]:
    fn = spec.schema.cls.VALIDATE_INPUTS
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs: dict[str, Any] = {}
    for inp in spec.schema.inputs:
        if takes_all or inp.name in params:
            kwargs[inp.name] = spec.constants.get(inp.name)
    if "input_types" in params:
        kwargs["input_types"] = {n: nodes[src].schema.output_types[slot] for n, (src, slot) in spec.links.items()}
    try:
        result = fn(**kwargs)
        if inspect.isawaitable(result):
            result = _await(result)
    except Exception as exc:  # user code: any exception is a validation failure, not a crash
        return [WorkflowIssue(spec.id, None, "exception_during_validation", "Exception when validating node",
                              f"{spec.class_type} #{spec.id}: {type(exc).__name__}: {exc}")]
    if result is True:
        return []
    names = ", ".join(k for k in kwargs if k != "input_types") or "inputs"
    return [WorkflowIssue(spec.id, None, "custom_validation_failed", "Custom validation failed for node",
                          f"{spec.class_type} #{spec.id}: {names} - {result}")]


def _await(awaitable: Any) -> Any:
    """The result of an async VALIDATE_INPUTS, from sync code, whether or not a loop runs here."""
    async def wait() -> Any:
        return await awaitable
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop runs in this thread: use another
        return pool.submit(asyncio.run, wait()).result()


def _assemble(prompt: dict[str, Any], nodes: dict[str, NodeSpec], outputs: list[str], needed: set[str],
              deps: dict[str, list[str]], per_node: dict[str, list[WorkflowIssue]], order: list[str]
              ) -> ValidationReport:
    """Keep the outputs whose whole subgraph is clean; report the rest in ComfyUI's shape."""
    bad = {nid for nid in needed if per_node[nid]}
    consumers = consumers_of({n: deps[n] for n in needed})
    tainted = bad | downstream(bad, consumers)
    good_outputs = [o for o in outputs if o not in tainted]
    out_set = set(outputs)
    node_errors: dict[str, Any] = {}
    issues: list[WorkflowIssue] = []
    for nid in sorted(bad, key=_id_order):
        reached = downstream([nid], consumers) | {nid}
        node_errors[nid] = {"errors": [i.to_dict() for i in per_node[nid]],
                            "dependent_outputs": [o for o in outputs if o in reached],
                            "class_type": nodes[nid].class_type}
        issues.extend(per_node[nid])
    if good_outputs and not order:  # a cycle elsewhere: order just what the clean outputs need
        order = topological_order(ancestors(good_outputs, deps), deps)
    workflow = Workflow({n: nodes[n] for n in order}, good_outputs, prompt, order) if good_outputs else None
    error = None
    if not good_outputs:
        details = "; ".join(i.details for i in issues if i.node_id in out_set)
        error = _top_error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
    return ValidationReport(workflow, good_outputs, issues, error, node_errors)


def _id_order(nid: str) -> tuple[int, Any]:
    return (0, int(nid)) if nid.isdigit() else (1, nid)
