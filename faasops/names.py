"""The names and short values faasops accepts, one :class:`NameRule` each: function, workspace,
namespace, project and environment names, label keys and values, env keys, Spin variable and
secret names, Kubernetes object names, quantities, handler modules.

Every check is a full match. Python's ``re.match``/``re.search`` with a pattern ending in ``$``
also match before a final newline, which is how ``name: "hello\\n"`` once validated and became a
SpinApp named ``"hello\\n"``. The manifest checks, the Builder API models and the command line
all check names here. ``faas.yaml.schema`` carries the same patterns (:attr:`NameRule.schema_pattern`
— the schema test keeps them equal) written to mean the same under ECMA-262, as editors read
them, and under Python's ``re.search``, as jsonschema and fastjsonschema apply them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, DecimalException

#: Kubernetes replica counts and the HPA's and KEDA's replica bounds are int32.
INT32_MAX = 2**31 - 1

# The bodies of the patterns, without anchors: what a whole name must be.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = _DNS_LABEL + r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"


@dataclass(frozen=True)
class NameRule:
    """One kind of name: a full-match ``pattern`` (no anchors), an optional length limit, and the
    message that completes ``'<value>' is …`` when a value breaks the rule."""

    pattern: str
    message: str
    max_length: int | None = None

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)

    @property
    def schema_pattern(self) -> str:
        """The pattern for JSON Schema. ``(?![\\s\\S])`` is "nothing follows": the end of the
        text under ECMA-262 and Python alike, where ``$`` would also match before a final
        newline under Python's ``re.search``."""
        return f"^{self.pattern}(?![\\s\\S])"

    def accepts(self, value: object) -> bool:
        return isinstance(value, str) and self.problem(value) is None

    def problem(self, value: str) -> str | None:
        """``None`` when ``value`` is a valid name, else the message for it."""
        if self.max_length is not None and len(value) > self.max_length:
            return f"{shown(value)} is {self.message} (it has {len(value)} characters)"
        if not self.regex.fullmatch(value):
            return f"{shown(value)} is {self.message}"
        return None

    def validated(self, value: str) -> str:
        """``value`` when valid; else :class:`ValueError` with the message (for pydantic's
        ``AfterValidator``, which answers it as a 422)."""
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _PATTERNS:
        _PATTERNS[pattern] = re.compile(pattern)
    return _PATTERNS[pattern]


def shown(value: object) -> str:
    """``value`` quoted for a message (escapes visible), cut short when it is long."""
    text = repr(value)
    return text if len(text) <= 50 else text[:45] + "…" + text[-1]


DNS_LABEL = NameRule(
    _DNS_LABEL,
    "not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter "
    "or digit (a DNS-1123 label such as 'hello-world')",
    63,
)
#: Function names: spin-operator names the app's Deployment and Service after the SpinApp, and a
#: Service name must be a DNS-1035 label (starting with a letter), so `1st-fn` is refused here
#: rather than by the API server at deploy time.
FUNCTION_NAME = NameRule(
    r"[a-z]([-a-z0-9]*[a-z0-9])?",
    "not a valid function name: use at most 63 lowercase letters, digits and '-', starting with a letter "
    "and ending with a letter or digit (a DNS-1035 label such as 'hello-world': the function's Kubernetes "
    "Service is named after it)",
    63,
)
DNS_SUBDOMAIN = NameRule(
    _DNS_SUBDOMAIN,
    "not a valid Kubernetes object name: use at most 253 lowercase letters, digits, '-' and '.', starting and "
    "ending with a letter or digit (a DNS-1123 subdomain such as 'containerd-shim-spin')",
    253,
)
#: Environment variable names: POSIX shells' rule (so never '=', a newline or NUL).
ENV_NAME = NameRule(
    r"[A-Za-z_][A-Za-z0-9_]*",
    "not a valid environment variable name: use letters, digits and '_', not starting with a digit "
    "(such as 'LOG_LEVEL')",
)
# Spin's variable names (spin crates/expressions/src/lib.rs, Key::validate): lowercase ASCII
# letters, digits and '_', starting with a letter, ending with a letter or digit, never two '_'
# in a row. Spin refuses the app otherwise.
SPIN_VARIABLE = NameRule(
    r"[a-z][a-z0-9]*(_[a-z0-9]+)*",
    "not a valid Spin variable name: use lowercase letters, digits and single '_' between them, starting with "
    "a letter (such as 'api_url')",
)
#: A secret's name: exposed as the Spin variable of its lower-cased name, so Spin's rule in any case.
SECRET_NAME = NameRule(
    r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*",
    "not a valid secret name: it becomes a Spin variable in lower case, so use letters, digits and single '_' "
    "between them, starting with a letter (such as 'DB_PASSWORD')",
)
LABEL_KEY = NameRule(
    r"((?=[^/]{1,253}/)" + _DNS_SUBDOMAIN + "/)?" + _QUALIFIED_NAME,
    "not a valid label or annotation key: use an optional DNS subdomain prefix and '/', then at most 63 "
    "letters, digits, '-', '_' and '.', starting and ending with a letter or digit (such as 'team' or "
    "'example.com/team')",
    317,
)
LABEL_VALUE = NameRule(
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
    "not a valid label value: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
    "letter or digit (or leave it empty)",
    63,
)
QUANTITY = NameRule(
    r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?",
    "not a valid Kubernetes quantity: write a number with an optional suffix, such as '100m' or '0.5' (CPU) "
    "or '128Mi' or '1Gi' (memory)",
    # Kubernetes keeps quantities in int64 units with a few digits of precision; no real one is longer.
    64,
)
_QUANTITY_UNITS = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}


def quantity_amount(text: str) -> Decimal | None:
    """The value of a Kubernetes quantity (``"128Mi"`` → 134217728, ``"500m"`` → 0.5, ``"1e3"``
    → 1000); None when ``text`` is not a quantity or too extreme to compute. The manifest checks
    compare requests with limits with it; ``faasops up`` reads memory limits and sizes with it."""
    match = QUANTITY.regex.fullmatch(text)
    if match is None:
        return None
    number, unit = match.group(1), match.group(3) or ""
    try:
        if unit in _QUANTITY_UNITS:
            return Decimal(number) * _QUANTITY_UNITS[unit]
        return Decimal(number).scaleb(int(unit[1:]))  # an exponent: e3, E-2
    except (DecimalException, ValueError):
        return None


MODULE_NAME = NameRule(
    # Dotted, as componentize-py takes it: `handlers.http` is handlers/http.py in the source.
    r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*",
    "not a valid Python module name: use letters, digits and '_', not starting with a digit, dots between "
    "package and module, without the .py suffix (such as 'app' or 'handlers.http')",
)
SECRET_KEY = NameRule(
    r"[-._a-zA-Z0-9]+",
    "not a valid Secret key: use letters, digits, '-', '_' and '.'",
    253,
)
SSM_PARAMETER = NameRule(
    r"\S+",
    "not a valid SSM parameter name: no spaces (such as '/prod/api-key')",
    2048,
)
# Spin's allowed_outbound_hosts entry (spin crates/outbound-networking-config/src/allowed_hosts.rs,
# AllowedHostConfig::parse): `<scheme>://<host>[:<port>]`, with '*' for any scheme, host or port,
# `*.domain` for subdomains, an IPv4 network in CIDR form, a bracketed IPv6 address, a port range
# `a..b`, and an optional trailing '/'. Without a port the scheme must have a well-known one
# (Spin refuses `*://host` and `ftp://host`). Narrower than Spin on purpose: ASCII host names, no
# `{{ variable }}` templates (faasops resolves no Spin variables at deploy time).
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)"
_OUTBOUND_HOST = (r"(\*|\*\.[A-Za-z0-9_]([-A-Za-z0-9_.]*[A-Za-z0-9_])?"
                  r"|[A-Za-z0-9_]([-A-Za-z0-9_.]*[A-Za-z0-9_])?(/[0-9]{1,2})?|\[[0-9A-Fa-f:.]+\])")
ALLOWED_OUTBOUND_HOST = NameRule(
    r"((\*|[A-Za-z]+)://" + _OUTBOUND_HOST + r":(\*|" + _PORT + r"(\.\." + _PORT + r")?)/?"
    r"|(http|https|redis|mysql|postgres|mqtt)://" + _OUTBOUND_HOST + r"/?)",
    "not a valid allowed_outbound_hosts entry: write <scheme>://<host>[:<port>] as Spin does, such as "
    "'https://api.example.com', 'http://127.0.0.1:8080', 'https://*.example.com' or '*://*:*' ('*' for any "
    "scheme, host or port; a port range as 8000..8080); a port is required unless the scheme is http, https, "
    "redis, mysql, postgres or mqtt; no path and no {{ variable }} templates",
    300,
)
# Spin's database label in `sqlite_databases` (spin crates/manifest kebab_or_snake_case: a
# KebabId or SnakeId, each word an ASCII letter then letters/digits, all lower or all upper case).
_ID_WORD = r"([a-z][a-z0-9]*|[A-Z][A-Z0-9]*)"
SQLITE_DATABASE = NameRule(
    _ID_WORD + r"((-" + _ID_WORD + r")*|(_" + _ID_WORD + r")*)",
    "not a valid SQLite database label: use kebab-case or snake_case words, each starting with "
    "a letter (such as 'default' or 'user-data')",
    63,
)
# Spin's store label in `key_value_stores` (the same kebab_or_snake_case rule).
KEY_VALUE_STORE = NameRule(
    _ID_WORD + r"((-" + _ID_WORD + r")*|(_" + _ID_WORD + r")*)",
    "not a valid key-value store label: use kebab-case or snake_case words, each starting with "
    "a letter (such as 'default' or 'user-data')",
    63,
)
#: ``-e NAME`` selects ``faas.NAME.yaml``: a DNS label keeps it one plain file name.
ENVIRONMENT = NameRule(
    _DNS_LABEL,
    "not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with "
    "a letter or digit (such as 'prod')",
    63,
)


# What a name can never hold, and what free text can never hold (tab, newline and carriage return
# are fine there). Surrogates come from YAML's "\ud800" escape: no UTF-8 (nor any API) carries them.
_NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def control_character_problem(text: str, *, free_text: bool) -> str | None:
    """Why ``text`` can't hold the control characters it has, or ``None``.

    NUL is refused everywhere: no environment, header, path or Kubernetes string can carry it
    (a NUL in an env value made every request to the function fail). Names (``free_text`` false)
    refuse every C0 control character and DEL; free text keeps tab, newline and carriage return,
    which values such as annotations legitimately hold."""
    found = (_NOT_IN_TEXT if free_text else _NOT_IN_NAMES).search(text)
    if found is None:
        return None
    code = ord(found.group())
    if code == 0:
        return "the NUL character (\\0) is not allowed in a manifest; remove it"
    if 0xD800 <= code <= 0xDFFF:
        return f"U+{code:04X} is half of a UTF-16 surrogate pair, not a character; remove it"
    return f"the control character U+{code:04X} is not allowed here; remove it"


def repository_name(project: str, workspace: str, function: str, prefix: str = "") -> str:
    """The OCI repository of a function's artifact, ``<prefix><project>/<workspace>/<function>``
    in lower case: how the local registry and the ecr/oci registries name it, and what validate
    checks no two functions share."""
    return f"{prefix}{project}/{workspace}/{function}".lower()


def split_address(text: str) -> tuple[str, str | None]:
    """``WS``, ``WS/FN`` or the bare function id ``WS.FN`` → ``(workspace, function or None)``.

    ``WS.FN`` is the ``function_id`` label faasops puts on SpinApps, pods and log lines, which
    users copy from Loki or Grafana: workspace and function names are DNS labels, which never
    hold a '.', so a dot can only separate the two. A '/' wins when both appear."""
    separator = "/" if "/" in text else "."
    workspace, _, function = text.partition(separator)
    return workspace, function or None


def canonical_address(text: str) -> str:
    """``WS.FN`` written as the address ``WS/FN`` the plan and the state use; other text unchanged."""
    workspace, function = split_address(text)
    return f"{workspace}/{function}" if function else workspace
