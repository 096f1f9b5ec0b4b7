"""From schema-checked manifest trees to the :class:`Project` model, with the checks a schema
can't express: unique names across files, what two functions may never share (Kubernetes
objects, function_id, OCI repository), control characters in any string, credentials in provider
blocks, source directories on disk, handler modules, replicas under autoscaling, requests within
limits and for autoscaling targets, secrets against variables. Rules that the Builder API applies
too live in :mod:`faasops.names` and :mod:`faasops.function_rules`.

It runs on whatever read well enough, even when the schema found problems, so that one run lists
as much as possible; every value is type-checked before use for that reason, and the model is
only returned when nothing at all was wrong.
"""

from __future__ import annotations

import keyword
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from faasops import function_rules, names
from faasops.errors import Problem
from faasops.file_mounts import FileMountError, resolve_file_mounts
from faasops.handler_contract import check_handler, keyword_in_module, module_file
from faasops.dependencies import (
    both_declared_message,
    build_caches,
    parse_dependency_list,
    read_requirements,
)
from faasops.imports_check import check_function_imports
from faasops.manifest.discovery import ManifestFile, inside
from faasops.manifest.overlay import merge_defaults
from faasops.manifest.yaml_source import YMap, YSeq, format_path, plain
from faasops.options import OptionSchemas
from faasops.model import (
    BACKEND_PRESETS,
    DEFAULT_EXECUTOR,
    DEFAULT_HANDLER,
    ALL_SLOTS,
    Autoscaling,
    FileMount,
    Function,
    Location,
    ProviderConfig,
    Resources,
    SecretRef,
    Workspace,
)
from faasops.source import SourceError, check_directory

_SECRET_SOURCES = {"kubernetes": "kubernetes", "ssm": "ssm", "secretsManager": "secretsmanager"}
# Provider options that would put a credential in faas.yaml, which is committed and shown in
# pull requests. Every built-in provider reads credentials from the environment instead (the
# union of what the aws, ecr/oci and remote plugins refuse when they are created, checked here so
# that `validate` refuses them too, in the root file and in overlays alike).
CREDENTIAL_OPTIONS = frozenset({
    "password", "token", "secret", "api_key", "bearer", "credentials",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "access_key", "access_key_id",
    "secret_key", "secret_access_key", "session_token",
})


@dataclass
class Document:
    """One manifest file as read (overlay merged) and schema-checked."""

    manifest: ManifestFile
    tree: YMap


@dataclass(frozen=True)
class ProjectDir:
    """A directory inside the project: root-relative posix path and absolute path."""

    relative: str
    absolute: Path


@dataclass(frozen=True)
class ProjectSettings:
    """What only the root manifest declares."""

    name: str | None
    providers: dict[str, ProviderConfig]
    templates_dir: Path | None
    defaults: YMap


class ProjectBuilder:
    """Collects problems while building model values; see the module docstring."""

    def __init__(self, root: Path, option_schemas: OptionSchemas | None = None):
        self.root = root
        self.option_schemas = option_schemas  # None: provider options are left to the providers
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []  # deprecated spellings that still work
        self._seen: set[tuple[str, int, int, str]] = set()
        self._workspaces: dict[str, YMap] = {}
        # What two functions must never share (one would overwrite the other on every apply):
        # their Kubernetes objects and deploy file (namespace and name), their function_id label
        # and their OCI repository; each maps to the first function's address and location.
        self._claimed: dict[tuple[str, ...], tuple[str, Location]] = {}
        self._packaging_problems: dict[Path, str | None] = {}
        # Large repositories point thousands of functions at a few directories and handlers:
        # each one is resolved and parsed once per load.
        self._directories: dict[tuple[str, str, str], tuple[str | None, ProjectDir | None]] = {}
        self._handlers: dict[tuple[Path, str, tuple[str, ...] | None], tuple[str | None, list[Problem]]] = {}
        self._build_caches: tuple[Path, ...] = ()  # where builds left installed dependencies

    def problem(self, loc: Location, path: list[Any], message: str) -> None:
        # The same message at the same place is said once, e.g. a bad value in `defaults` that
        # every function inherits.
        key = (loc.file, loc.line, loc.col, message)
        if key not in self._seen:
            self._seen.add(key)
            self.problems.append(Problem(loc.file, loc.line, loc.col, format_path(path), message))

    def check_characters(self, node: Any, path: list[Any]) -> None:
        """Refuse NUL and other control characters in every key and string of a manifest tree:
        names never hold them, free text (env values, annotations…) never holds NUL."""
        if isinstance(node, YMap):
            for key, value in node.items():
                problem = names.control_character_problem(key, free_text=False)
                if problem:
                    self.problem(node.key_locs[key], path + [key], f"key {names.shown(key)}: {problem}")
                if isinstance(value, str):
                    self._check_text(value, node.value_locs[key], path + [key])
                else:
                    self.check_characters(value, path + [key])
        elif isinstance(node, YSeq):
            for index, value in enumerate(node):
                if isinstance(value, str):
                    self._check_text(value, node.item_locs[index], path + [index])
                else:
                    self.check_characters(value, path + [index])

    def _check_text(self, text: str, loc: Location, path: list[Any]) -> None:
        problem = names.control_character_problem(text, free_text=True)
        if problem:
            self.problem(loc, path, problem)

    # --- the root manifest -------------------------------------------------------------------

    def settings(self, root_doc: Document | None) -> ProjectSettings:
        tree = root_doc.tree if root_doc else YMap(Location("faas.yaml"))
        name = _text(tree.get("project"))
        backend = tree.get("backend", "local")
        preset = BACKEND_PRESETS.get(backend) if isinstance(backend, str) else None
        overrides = tree.get("providers") if isinstance(tree.get("providers"), YMap) else YMap(tree.loc)
        providers: dict[str, ProviderConfig] = {}
        for slot in ALL_SLOTS:
            override = overrides.get(slot)
            if isinstance(override, YMap):
                self.check_no_credentials(override, ["providers", slot])
            if isinstance(override, YMap) and isinstance(override.get("type"), str) \
                    and self.option_schemas is not None:
                problems, warnings = self.option_schemas.check_slot(tree, slot, tree.loc.file)
                self.problems += problems
                self.warnings += warnings
            if isinstance(override, YMap) and isinstance(override.get("type"), str):
                options = {key: plain(value) for key, value in override.items() if key != "type"}
                providers[slot] = ProviderConfig(slot, override["type"], options)
            elif preset:
                providers[slot] = ProviderConfig(slot, preset[slot], {})
        templates_dir = None
        if isinstance(tree.get("templates"), str):
            templates = self.directory(tree, "templates", ["templates"], "template directory")
            templates_dir = templates.absolute if templates else None
        defaults = tree.get("defaults") if isinstance(tree.get("defaults"), YMap) else YMap(tree.loc)
        self.check_settings(defaults, ["defaults"])
        self._build_caches = build_caches(self.root, providers["builder"].options if "builder" in providers else {})
        return ProjectSettings(name, providers, templates_dir, defaults)

    def check_no_credentials(self, options: YMap, path: list[Any]) -> None:
        """Refuse credential options anywhere in a provider block (options of another type can
        be nested, as the logs slot's ``loki: {url: …}``)."""
        for key, value in options.items():
            if key.lower() in CREDENTIAL_OPTIONS:
                message = (
                    f"remove '{key}': faasops never reads credentials from faas.yaml (it is committed and shown in "
                    "reviews); the providers read them from the environment (e.g. password_env or token_env names "
                    "an environment variable, AWS uses its default credential chain)"
                )
                self.problem(options.key_locs[key], path + [key], message)
            elif isinstance(value, YMap):
                self.check_no_credentials(value, path + [key])

    # --- workspaces and functions --------------------------------------------------------------

    def workspaces(self, doc: Document, settings: ProjectSettings) -> list[Workspace]:
        items = doc.tree.get("workspaces")
        if not isinstance(items, YSeq):
            return []
        built = []
        for index, item in enumerate(items):
            if isinstance(item, YMap):
                workspace = self.workspace(item, ["workspaces", index], settings)
                if workspace:
                    built.append(workspace)
        return built

    def workspace(self, node: YMap, path: list[Any], settings: ProjectSettings) -> Workspace | None:
        name = _text(node.get("name"))
        duplicate = False
        if name is not None:
            first = self._workspaces.setdefault(name, node)
            duplicate = first is not node
            if duplicate:
                where = first.value_locs["name"]
                message = f"workspace '{name}' is already declared at {where}; workspace names are unique across all manifest files"
                self.problem(node.value_locs["name"], path + ["name"], message)
        functions: list[Function] = []
        seen: dict[str, YMap] = {}
        items = node.get("functions")
        for index, item in enumerate(items if isinstance(items, YSeq) else []):
            if not isinstance(item, YMap):
                continue
            fn_path = path + ["functions", index]
            fn_name = _text(item.get("name"))
            if fn_name is not None:
                earlier = seen.setdefault(fn_name, item)
                if earlier is not item:
                    message = f"function '{fn_name}' is already declared in this workspace at {earlier.value_locs['name']}"
                    self.problem(item.value_locs["name"], fn_path + ["name"], message)
            function = self.function(item, fn_path, name or "", settings.defaults)
            if function:
                functions.append(function)
            if name is not None and fn_name is not None and seen[fn_name] is item and not duplicate:
                namespace = _text(node.get("namespace")) or name
                self.claim_names(settings.name, name, namespace, fn_name, item.value_locs["name"], fn_path + ["name"])
        if name is None:
            return None
        return Workspace(
            name=name,
            location=node.loc,
            namespace=_text(node.get("namespace")) or name,
            labels=_strings(node.get("labels")),
            protect=node.get("protect") is True,
            functions=tuple(functions),
        )

    def claim_names(self, project: str | None, workspace: str, namespace: str, name: str, loc: Location,
                    path: list[Any]) -> None:
        """Record what function ``workspace/name`` will own outside faasops, and refuse it when
        an earlier function owns it already: one of the two would be silently overwritten."""
        if not (names.DNS_LABEL.accepts(workspace) and names.DNS_LABEL.accepts(namespace)
                and names.FUNCTION_NAME.accepts(name)):
            return  # the schema reports the name; what it would collide with is moot
        from faasops.plugins.spinkube import function_id  # the label scaffolder, loki and prometheus share

        address = f"{workspace}/{name}"
        owned = [
            (("object", namespace, name),
             f"the same Kubernetes objects (SpinApp, Deployment, Service, autoscaler) in namespace '{namespace}' "
             "and the same deploy file"),
            (("function_id", function_id(workspace, name)), f"the same function_id label {function_id(workspace, name)!r}"),
        ]
        if project is not None:
            repository = names.repository_name(project, workspace, name)
            owned.append((("repository", repository), f"the same OCI repository {repository!r}"))
        for key, what in owned:
            first = self._claimed.setdefault(key, (address, loc))
            if first[0] != address:
                message = (f"function '{address}' would have {what} as function '{first[0]}' at {first[1]}; "
                           "rename one of them or deploy their workspaces to different namespaces")
                self.problem(loc, path, message)

    def function(self, node: YMap, path: list[Any], workspace: str, defaults: YMap) -> Function | None:
        settings = merge_defaults(defaults, node)
        self.check_settings(settings, path)
        if "replicas" in node and settings.get("autoscaling") is not None:
            self.replicas_under_autoscaling(node, path)
        self.check_autoscaling_requests(node, settings, path)
        source = None
        if isinstance(node.get("source"), str):
            source = self.directory(node, "source", path + ["source"], "source directory")
            if source and not self.packageable(node, path + ["source"], source):
                source = None
        dependencies = self.dependencies(node, path, source) if source else None
        handler = node.get("handler", DEFAULT_HANDLER)
        if source and names.MODULE_NAME.accepts(handler):
            self.handler(node, path, source, handler, dependencies)
        name = _text(node.get("name"))
        if name is None or source is None or not isinstance(handler, str):
            return None
        autoscaling = _autoscaling(settings.get("autoscaling"))
        replicas = settings.get("replicas")
        return Function(
            workspace=workspace,
            name=name,
            source_dir=source.absolute,
            source=source.relative,
            location=node.loc,
            handler=handler,
            env=_strings(settings.get("env")),
            variables=_strings(settings.get("variables")),
            secrets=_secrets(settings.get("secrets")),
            resources=_resources(settings.get("resources")),
            # Under autoscaling the autoscaler owns the count; defaults' replicas is ignored.
            replicas=replicas if _is_int(replicas) and autoscaling is None else 1,
            autoscaling=autoscaling,
            spot=settings.get("spot") is True,
            protect=settings.get("protect") is True,
            executor=_text(settings.get("executor")) or DEFAULT_EXECUTOR,
            labels=_strings(settings.get("labels")),
            annotations=_strings(settings.get("annotations")),
            timeout=_seconds(settings.get("timeout")),
            allowed_outbound_hosts=_string_list(settings.get("allowed_outbound_hosts")),
            sqlite_databases=_string_list(settings.get("sqlite_databases")),
            key_value_stores=_string_list(settings.get("key_value_stores")),
            files=self.file_mounts(node, path, source),
            dependencies=dependencies or (),
        )

    def file_mounts(self, node: YMap, path: list[Any], source: ProjectDir) -> tuple[FileMount, ...]:
        """The function's ``files``, each entry checked against its source directory: it must
        exist there (or be a glob) and stay inside it, without symbolic links."""
        entries = node.get("files")
        if not isinstance(entries, YSeq):
            return ()
        mounts = []
        for index, item in enumerate(entries):
            if isinstance(item, str):
                mount = FileMount(item)
            elif (isinstance(item, YMap) and isinstance(item.get("source"), str)
                  and isinstance(item.get("destination"), str)):
                mount = FileMount(item["source"], item["destination"])
            else:
                continue  # the schema reported it
            try:
                resolve_file_mounts(source.absolute, [mount])
            except FileMountError as exc:
                self.problem(entries.item_locs[index], path + ["files", index], str(exc))
                continue
            mounts.append(mount)
        return tuple(mounts)

    def replicas_under_autoscaling(self, node: YMap, path: list[Any]) -> None:
        message = (
            "replicas can't be set with autoscaling: the autoscaler owns the replica count and "
            "SpinKube rejects replicas with enableAutoscaling; remove replicas"
        )
        if "autoscaling" not in node:
            message += " (autoscaling comes from defaults; set autoscaling: null to turn it off)"
        self.problem(node.value_locs["replicas"], path + ["replicas"], message)

    def check_autoscaling_requests(self, node: YMap, settings: YMap, path: list[Any]) -> None:
        """A cpu (memory) utilization target needs a cpu (memory) request: utilization is usage
        over request, so the HPA can't compute it, and KEDA's webhook refuses the ScaledObject.
        Checked on the function's settings with defaults merged, where the request may come from."""
        scaling = settings.get("autoscaling")
        if not isinstance(scaling, YMap):
            return
        resources = settings.get("resources")
        requests = resources.get("requests") if isinstance(resources, YMap) else None
        for kind in ("cpu", "memory"):
            target = scaling.get(kind) if _is_int(scaling.get(kind)) else None
            request = _quantity(requests, kind) if isinstance(requests, YMap) else None
            message = function_rules.missing_request(kind, target, request)
            if message is None:
                continue
            written = "autoscaling" in node and isinstance(node["autoscaling"], YMap) and kind in node["autoscaling"]
            loc = scaling.value_locs[kind] if written else node.value_locs.get("name", node.loc)
            at = path + (["autoscaling", kind] if written else ["name"])
            message += " on this function or in defaults"
            if not written:
                message = f"function '{_text(node.get('name'))}': " + message + " (autoscaling comes from defaults)"
            self.problem(loc, at, message)

    def check_settings(self, settings: YMap, path: list[Any]) -> None:
        """Checks of function settings (or defaults) that need more than one value at a time."""
        scaling = settings.get("autoscaling")
        if isinstance(scaling, YMap):
            low, high = scaling.get("min", 1), scaling.get("max")
            message = function_rules.max_below_min(low, high) if _is_int(low) and _is_int(high) else None
            if message:
                self.problem(scaling.value_locs["max"], path + ["autoscaling", "max"], message)
        resources = settings.get("resources")
        if isinstance(resources, YMap):
            self.check_numeric_quantities(resources, path + ["resources"])
            self.check_requests_within_limits(resources, path + ["resources"])
        self.check_secret_names(settings, path)
        annotations = settings.get("annotations")
        if isinstance(annotations, YMap):
            message = function_rules.annotations_too_large(_strings(annotations))
            if message:
                self.problem(settings.value_locs["annotations"], path + ["annotations"], message)

    def check_numeric_quantities(self, resources: YMap, path: list[Any]) -> None:
        """Quantities YAML read as numbers (``cpu: 0.5``) keep their text, which must still be a
        quantity: ``.inf``, ``.nan``, ``0x10`` or ``1_000`` are numbers to YAML but not to Kubernetes
        (the schema checks only quoted ones)."""
        for part in ("requests", "limits"):
            values = resources.get(part)
            if not isinstance(values, YMap):
                continue
            for kind in ("cpu", "memory"):
                value = values.get(kind)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and _quantity(values, kind) is None:
                    written = values.raw.get(kind, str(value))
                    self.problem(values.value_locs[kind], path + [part, kind], f"{written!r} is {names.QUANTITY.message}")

    def check_requests_within_limits(self, resources: YMap, path: list[Any]) -> None:
        requests, limits = resources.get("requests"), resources.get("limits")
        if not isinstance(requests, YMap) or not isinstance(limits, YMap):
            return
        for kind in ("cpu", "memory"):
            request, limit = _quantity(requests, kind), _quantity(limits, kind)
            if request is None or limit is None:
                continue
            request_amount, limit_amount = names.quantity_amount(request), names.quantity_amount(limit)
            if request_amount is not None and limit_amount is not None and request_amount > limit_amount:
                message = f"the {kind} request {request} is more than the {kind} limit {limit}; Kubernetes rejects that"
                self.problem(requests.value_locs[kind], path + ["requests", kind], message)

    def check_secret_names(self, settings: YMap, path: list[Any]) -> None:
        """Secrets against each other, env and variables (:func:`function_rules.secret_clashes`)."""
        env = settings.get("env") if isinstance(settings.get("env"), YMap) else {}
        variables = settings.get("variables") if isinstance(settings.get("variables"), YMap) else {}
        items = settings.get("secrets")
        named = [(index, secret) for index, secret in enumerate(items if isinstance(items, YSeq) else [])
                 if isinstance(secret, YMap) and isinstance(secret.get("name"), str)]
        clashes = function_rules.secret_clashes([secret["name"] for _, secret in named], variables, env)
        for position, message in clashes:
            index, secret = named[position]
            self.problem(secret.value_locs["name"], path + ["secrets", index, "name"], message)

    def directory(self, node: YMap, key: str, path: list[Any], what: str) -> ProjectDir | None:
        """The directory ``node[key]`` names, relative to the manifest that wrote it; it must
        exist inside the project root, symlinks resolved."""
        text: str = node[key]
        loc = node.value_locs[key]
        found = (loc.file, text, what)
        if found not in self._directories:
            self._directories[found] = self._resolve_directory(PurePosixPath(loc.file).parent, text, what)
        problem, directory = self._directories[found]
        if problem:
            self.problem(loc, path, problem)
        return directory

    def _resolve_directory(self, base: PurePosixPath, text: str, what: str) -> tuple[str | None, ProjectDir | None]:
        unusable = names.control_character_problem(text, free_text=False)
        if unusable:  # the operating system can't take such a path (NUL), or it is hostile
            return unusable, None
        if PurePosixPath(text).is_absolute() or Path(text).is_absolute():
            where = "the project root" if str(base) == "." else f"{base}/"
            return f"the {what} must be a relative path (relative to {where}), not {text!r}", None
        relative = os.path.normpath(str(base / text)).replace(os.sep, "/")
        if relative == ".." or relative.startswith("../"):
            return f"{text!r} leads outside the project root; the {what} must be inside the project", None
        absolute = self.root / relative if relative != "." else self.root
        if _symlink_loop(absolute):
            return f"{text!r} goes through a symlink loop; the {what} must be a directory", None
        if not inside(self.root, absolute):
            return (f"{text!r} goes through a symlink that leads outside the project root; "
                    f"the {what} must be inside the project"), None
        if not absolute.exists():
            return f"the {what} {relative!r} does not exist", None
        if not absolute.is_dir():
            return f"{relative!r} is a file; the {what} must be a directory", None
        return None, ProjectDir(relative, absolute)

    def packageable(self, node: YMap, path: list[Any], source: ProjectDir) -> bool:
        """Whether apply's snapshot could archive the source directory (no symlink leading out
        of it, at most 64 MiB): checked from names and sizes here, before anything is written."""
        # Large repositories point many functions at one directory: check each directory once.
        if source.absolute not in self._packaging_problems:
            try:
                check_directory(source.absolute)
                self._packaging_problems[source.absolute] = None
            except SourceError as exc:
                self._packaging_problems[source.absolute] = exc.relative
        problem = self._packaging_problems[source.absolute]
        if problem is not None:
            self.problem(node.value_locs["source"], path, f"the source directory {source.relative!r} can't be packaged: {problem}")
            return False
        return True

    def dependencies(self, node: YMap, path: list[Any], source: ProjectDir) -> tuple[str, ...] | None:
        """The function's ``dependencies:`` list (``()`` when absent), each entry checked as a
        requirements.txt line, and not declared beside a requirements file that declares
        packages too; None when any of that fails (then its imports are not checked)."""
        entries = node.get("dependencies")
        if not isinstance(entries, YSeq) or not entries:
            return ()
        at = path + ["dependencies"]
        # Entries that are not strings, or empty, the schema reports.
        checked = [index for index, entry in enumerate(entries) if isinstance(entry, str) and entry]
        texts = tuple(entries[index] for index in checked)
        _, problems = parse_dependency_list(texts)
        for position, message in problems:
            index = checked[position]
            self.problem(entries.item_locs[index], at + [index], message)
        prefix = "" if source.relative == "." else f"{source.relative}/"
        from_file, _ = read_requirements(source.absolute, prefix)  # its own problems: check_function_imports
        if from_file is not None and from_file.installable:
            self.problem(node.value_locs["dependencies"], at, both_declared_message(from_file))
            return None
        return None if problems or len(texts) < len(entries) else texts

    def handler(self, node: YMap, path: list[Any], source: ProjectDir, handler: str,
                dependencies: tuple[str, ...] | None = ()) -> None:
        # Point at `handler:` when it is written, else at `source:` (the default module is missing).
        written = "handler" in node
        loc = node.value_locs["handler" if written else "source"]
        at = path + ["handler" if written else "source"]
        reserved = keyword_in_module(handler)
        if reserved is not None:
            self.problem(loc, at, f"{reserved!r} is a Python keyword and can't name a module; rename the module")
            return
        module = source.absolute / module_file(handler)
        display = module_file(handler) if source.relative == "." else f"{source.relative}/{module_file(handler)}"
        if (module, display, dependencies) not in self._handlers:
            self._handlers[module, display, dependencies] = self._handler_problems(module, display, source, handler,
                                                                                   dependencies)
        problem, contract = self._handlers[module, display, dependencies]
        if problem == "missing":
            hint = "" if written else f" (handler defaults to {DEFAULT_HANDLER!r}; set handler: to the module's name)"
            self.problem(loc, at, f"the handler module {display} does not exist{hint}")
            return
        if problem == "outside":
            self.problem(loc, at, f"the handler module {display} is a symlink to a file outside the project root")
            return
        self.problems += contract

    def _handler_problems(self, module: Path, display: str, source: ProjectDir, handler: str,
                          dependencies: tuple[str, ...] | None) -> tuple[str | None, list[Problem]]:
        if not module.is_file():
            return "missing", []
        if not inside(self.root, module):
            return "outside", []
        prefix = "" if source.relative == "." else f"{source.relative}/"
        problems = check_handler(module, display, source.absolute)
        if problems or dependencies is None:  # bad `dependencies:` are reported at their entries
            return None, problems
        return None, check_function_imports(source.absolute, handler, prefix, self._build_caches, dependencies)


def _symlink_loop(path: Path) -> bool:
    try:
        path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop from …"
        return True
    return False


def _autoscaling(node: Any) -> Autoscaling | None:
    if not isinstance(node, YMap) or not _is_int(node.get("max")):
        return None
    low = node.get("min", 1)
    return Autoscaling(
        type=node.get("type", "hpa") if isinstance(node.get("type"), str) else "hpa",
        min_replicas=low if _is_int(low) else 1,
        max_replicas=node["max"],
        cpu_utilization=node.get("cpu") if _is_int(node.get("cpu")) else None,
        memory_utilization=node.get("memory") if _is_int(node.get("memory")) else None,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _seconds(value: Any) -> int | None:
    """A ``timeout`` the schema accepted (``30s``, ``2m``, ``1h``) in seconds, else None."""
    match = re.fullmatch(r"([0-9]{1,4})([smh])", value) if isinstance(value, str) else None
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]] if match else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, YMap):
        return {}
    return {key: item for key, item in value.items() if isinstance(item, str)}


def _string_list(value: Any) -> tuple[str, ...]:
    """The strings of a list the schema accepted, in order and without repeats."""
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(item for item in value if isinstance(item, str)))


def _secrets(value: Any) -> tuple[SecretRef, ...]:
    refs = []
    for item in value if isinstance(value, YSeq) else []:
        if isinstance(item, YMap) and isinstance(item.get("name"), str):
            ref = _secret_ref(item["name"], item)
            if ref:
                refs.append(ref)
    return tuple(refs)


def _secret_ref(name: str, item: YMap) -> SecretRef | None:
    """The reference of the first source the secret names (the schema allows exactly one)."""
    for key, source in _SECRET_SOURCES.items():
        spec = item.get(key)
        if key == "ssm" and isinstance(spec, str):
            return SecretRef(name, source, spec)
        if isinstance(spec, YMap):
            ref = spec.get("secret" if key == "kubernetes" else "id")
            return SecretRef(name, source, ref, _text(spec.get("key"))) if isinstance(ref, str) else None
    return None


def _resources(value: Any) -> Resources:
    if not isinstance(value, YMap):
        return Resources()
    requests = value.get("requests") if isinstance(value.get("requests"), YMap) else YMap(value.loc)
    limits = value.get("limits") if isinstance(value.get("limits"), YMap) else YMap(value.loc)
    return Resources(
        cpu_request=_quantity(requests, "cpu"),
        memory_request=_quantity(requests, "memory"),
        cpu_limit=_quantity(limits, "cpu"),
        memory_limit=_quantity(limits, "memory"),
    )


def _quantity(node: YMap, key: str) -> str | None:
    """A quantity as written: YAML numbers (``cpu: 0.5``) keep their source text."""
    value = node.get(key)
    if isinstance(value, bool) or value is None:
        return None
    text = value if isinstance(value, str) else node.raw.get(key, str(value))
    return text if names.QUANTITY.accepts(text) else None


