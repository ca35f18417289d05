"""`make mutate`: mutation testing (mutmut) of the safety-critical code over the fast tests -> docs/mutation.md.

Runs in its own venv (.venv-mutate: mutmut needs a newer click than aws-sam-cli pins). Only the functions that decide
what is approved, applied, gated or refused are counted: the approval service, the approval-gate proof and the
definition of a change, and each playbook's plan and bound functions. `--guard` is the quick guard `make test` runs:
a fixed sample of the gate proof's and the change classification's mutants, which must all be killed.

Two adaptations of mutmut, in `_launch`: the Lambda code in functions/ is imported as top-level modules (`approvals`,
as Lambda imports it), while mutmut names a mutant after its file path (`functions.approvals...`); the trampoline
would then never find the mutant under test and every mutant would pass as "no tests". We name them as imported.
And mutmut mutates every function of a file: we keep only the mutants of the counted functions.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "mutation.md"
MINIMUM_KILLED = 90.0


@dataclass(frozen=True)
class Target:
    path: str  # the file, as in [tool.mutmut] only_mutate
    module: str  # the module name the tests import
    functions: tuple[str, ...]  # the functions counted; () = every function of the module
    why: str

    def globs(self) -> list[str]:
        return [f"{self.module}.x_{name}__mutmut_*" for name in self.functions] or [f"{self.module}.*"]


TARGETS = [
    Target(
        "src/playbooks/validate.py",
        "playbooks.validate",
        (
            "inner_definitions",
            "states_of",
            "successors",
            "is_approval",
            "function_changes",
            "function_of",
            "mutating_reason",
            "approval_gate",
        ),
        "the approval-gate proof and what counts as mutating",
    ),
    Target("src/playbooks/safety.py", "playbooks.safety", (), "which recorded calls are changes"),
    Target(
        "functions/lambda_throttling.py",
        "lambda_throttling",
        ("plan", "_raise_reservation", "_quota_increase"),
        "the reservation's raise, cap and floor",
    ),
    Target(
        "functions/access_denied.py",
        "access_denied",
        (
            "action_refusal",
            "resource_refusal",
            "role_refusal",
            "_glob",
            "statement_covers",
            "principal_values",
            "names_principal",
            "names_account",
            "resource_policy_denies",
            "key_policy_grant",
            "enables_iam_policies",
            "identity_statement",
            "key_statement",
            "_check_statement",
            "add_identity_statement",
            "add_key_statement",
            "with_restart",
            "plan",
            "merge",
        ),
        "the least permission it grants, the key-policy decision, what it refuses",
    ),
    Target(
        "functions/cost_spike.py",
        "cost_spike",
        (
            "proposed_memory",
            "lambda_memory_finding",
            "dynamodb_finding",
            "s3_tiering_finding",
            "log_retention_finding",
            "in_scope",
            "plan",
            "still_as_planned",
        ),
        "each saving's price, the memory and savings floors, the scope",
    ),
    Target("functions/event_loop.py", "event_loop", ("fixed_pattern", "plan"), "the containment and the restricted pattern"),
    Target(
        "functions/execution_stuck.py",
        "execution_stuck",
        ("retry_name", "source_object", "plan"),
        "the stop and the reprocessing run",
    ),
    # The request and the decision path; not the e-mail texts and the reminder sweep (they decide nothing).
    Target(
        "functions/approvals.py",
        "approvals",
        (
            "request_approval",
            "load",
            "current_status",
            "_audit_entry",
            "decide",
            "_conditional",
            "_reject",
            "_approve",
            "_lost_race",
            "_send",
            "_undelivered",
        ),
        "what a decision approves, refuses or tells the waiting playbook",
    ),
    # Every function mutmut can reach (the route handlers are decorated: reached through the resolver by the tests).
    Target("functions/approval_api.py", "approval_api", (), "what the approval page offers and what its POST names"),
]


# The quick guard (`make test`): a fixed sample of the gate proof's and the change classification's mutants, run over
# the tests that reach them, must all be killed.
GUARD_TARGETS = [target for target in TARGETS if target.module in ("playbooks.validate", "playbooks.safety")]
# (Not the whole-project validation: half a minute of cfn-lint and schemas, and the crafted graphs already kill these.)
GUARD_TESTS = (
    "tests/static/test_gate_proof.py",
    "tests/static/test_function_changes.py",
    "tests/static/test_validate.py",
    "tests/unit/test_safety.py",
    "--deselect=tests/static/test_validate.py::test_validate_passes_on_the_project",
    "--deselect=tests/static/test_validate.py::test_fidelity_rules_reject_jsonata_and_missing_timeout",
)
GUARD_SAMPLE = 50


# Survivors that are equivalent: the mutated line (as `mutmut show` prints it, after "+ ") -> why no behaviour changes.
ONE_COLON = "a recorded api is '<service>:<Operation>', with one colon"
TASK_HAS_RESOURCE = "every Task state has a Resource (the ASL parser refuses one without), so the default is never used"
SDK_ARN = "an aws-sdk resource is 'arn:aws:states:::aws-sdk:<service>:<action>': two parts after the prefix"
INTEGRATION_ARN = "an optimized-integration resource ends ':<action>' after 'arn:aws:states:::dynamodb', so both ends agree"
NO_ACTION = "IAM refuses a statement without Action (the template has none), so the default is never used"
NO_REFERENCE = "any default without a template reference is judged like '*': not the stack's own, so a change"
ONE_COLON_ACTION = "an IAM action is '<prefix>:<Action>', with one colon"
NO_X_PLACEHOLDER = "no placeholder name begins or ends with X, so stripping X too changes nothing"
HAS_SUBSTITUTIONS = "every state machine of the template has DefinitionSubstitutions"
HAS_FUNCTION_NAME = "lambda:invoke requires FunctionName, so the default is never used"
MISSING_SUBSTITUTION = "a placeholder with no substitution is taken as named whatever the default (not a GetAtt)"
ONLY_ON_DEMAND = (
    "only PAY_PER_REQUEST is told apart: any other default is taken as provisioned, and DescribeTable leaves "
    "BillingModeSummary out only for provisioned tables"
)
KEPT_DAYS = "kept_days is at least the wanted retention, which the config schema bounds to 1..30 days, so never 0"
S3_RULES_ONLY = (
    "an s3-tiering action's current value and before-state hold only lifecycleRules, so the general comparison is the same equality"
)
PARAMETERS_REQUIRED = "read only for Lambda and DynamoDB integrations, which require Parameters (FunctionName, TableName)"
LAST_ARN_PART = "an ARN has several ':', and the last part of any right split of it is the same (maxsplit 1 gives two parts)"
EQUIVALENT = {
    '(_listed(statement.get("Action", None)), statement.get("Resource", "*"))': NO_ACTION,
    '(_listed(statement.get("Action", )), statement.get("Resource", "*"))': NO_ACTION,
    '(_listed(statement.get("Action", [])), statement.get("Resource", None))': NO_REFERENCE,
    '(_listed(statement.get("Action", [])), statement.get("Resource", ))': NO_REFERENCE,
    '(_listed(statement.get("Action", [])), statement.get("Resource", "XX*XX"))': NO_REFERENCE,
    'grants = [([f"{policy} (a managed policy)"], "XX*XX")]': NO_REFERENCE,
    'operation = str(action).split(":", )[-1]': ONE_COLON_ACTION,
    'operation = str(action).rsplit(":", 1)[-1]': ONE_COLON_ACTION,
    'operation = str(action).split(":", 2)[-1]': ONE_COLON_ACTION,
    'value = substitutions.get(placeholder.strip("${}"), None)': MISSING_SUBSTITUTION,
    'value = substitutions.get(placeholder.strip("${}"), )': MISSING_SUBSTITUTION,
    'value = substitutions.get(placeholder.strip("XX${}XX"), {})': NO_X_PLACEHOLDER,
    'return str(value["Fn::GetAtt"][0]) if isinstance(value, dict) and "Fn::GetAtt" in value else placeholder.strip("XX${}XX")': NO_X_PLACEHOLDER,
    'substitutions = project.template()["Resources"][machine]["Properties"].get("DefinitionSubstitutions", None)': HAS_SUBSTITUTIONS,
    'substitutions = project.template()["Resources"][machine]["Properties"].get("DefinitionSubstitutions", )': HAS_SUBSTITUTIONS,
    'function = function_of(machine, str(parameters.get("FunctionName", None)))': HAS_FUNCTION_NAME,
    'function = function_of(machine, str(parameters.get("FunctionName", )))': HAS_FUNCTION_NAME,
    'function = function_of(machine, str(parameters.get("FunctionName", "XXXX")))': HAS_FUNCTION_NAME,
    'return str(params[key]).rsplit(":function:")[-1]': "a function ARN holds ':function:' once, so split and rsplit agree",
    'prefix, operation = call.api.split(":", )': ONE_COLON,
    'prefix, operation = call.api.rsplit(":", 1)': ONE_COLON,
    'prefix, operation = call.api.split(":", 2)': ONE_COLON,
    'resource = str(state.get("Resource", None))': TASK_HAS_RESOURCE,
    'resource = str(state.get("Resource", ))': TASK_HAS_RESOURCE,
    'resource = str(state.get("Resource", "XXXX"))': TASK_HAS_RESOURCE,
    'service, action = resource.removeprefix(SDK_PREFIX).split(":")[:3]': SDK_ARN,
    'action = resource.rsplit(":", )[-1]': INTEGRATION_ARN,
    'action = resource.rsplit(":", 2)[-1]': INTEGRATION_ARN,
    'action = resource.rsplit(":", 1)[+1]': INTEGRATION_ARN,
    'parameters = state.get("Parameters", None)': PARAMETERS_REQUIRED,
    'parameters = state.get("Parameters", )': PARAMETERS_REQUIRED,
    'table = parameters.get("TableName", None)': "a DynamoDB integration names its TableName (required by the API)",
    'table = parameters.get("TableName", )': "a DynamoDB integration names its TableName (required by the API)",
    'table = parameters.get("TableName", "XXXX")': "a DynamoDB integration names its TableName (required by the API)",
    'for name, state in definition.get("States", None).items():': "every state machine and branch has States (required by ASL)",
    'for name, state in definition.get("States", ).items():': "every state machine and branch has States (required by ASL)",
    # each playbook's plan and bound functions
    'mode = (table.get("BillingModeSummary") or {}).get("BillingMode", None)': ONLY_ON_DEMAND,
    'mode = (table.get("BillingModeSummary") or {}).get("BillingMode", )': ONLY_ON_DEMAND,
    'mode = (table.get("BillingModeSummary") or {}).get("BillingMode", "XXPROVISIONEDXX")': ONLY_ON_DEMAND,
    'mode = (table.get("BillingModeSummary") or {}).get("BillingMode", "provisioned")': ONLY_ON_DEMAND,
    'stored = float(group.get("storedBytes", 1))': "one byte more at $0.03 per GB-month is less than a cent: every saving is rounded to cents",
    'age_days = max((now - datetime.fromtimestamp(group.get("creationTime", 1) / 1000, now.tzinfo)).days, wanted)': (
        "one millisecond after the epoch is the same number of days ago"
    ),
    "saving = stored / GB * LOGS_STORED_GB_MONTH * max(1 - wanted / kept_days, 0.0) if (kept_days) or True else 0.0": KEPT_DAYS,
    "saving = stored / GB * LOGS_STORED_GB_MONTH * max(1 - wanted / kept_days, 0.0) if kept_days else 1.0": KEPT_DAYS,
    'if action["kind"] == "XXs3-tieringXX":': S3_RULES_ONLY,
    'if action["kind"] == "S3-TIERING":': S3_RULES_ONLY,
    'incident = playbook_execution.rsplit(":", )[-1]': LAST_ARN_PART,
    'incident = playbook_execution.rsplit(":", 2)[-1]': LAST_ARN_PART,
    'incident = playbook_execution.rsplit(":", 1)[+1]': LAST_ARN_PART,
    "f\"Execution {execution['name']} of {target['stateMachineArn'].rsplit(':', )[-1]} is {execution['status']} since \"": LAST_ARN_PART,
    "f\"Execution {execution['name']} of {target['stateMachineArn'].rsplit(':', 2)[-1]} is {execution['status']} since \"": LAST_ARN_PART,
    "f\"Execution {execution['name']} of {target['stateMachineArn'].rsplit(':', 1)[+1]} is {execution['status']} since \"": LAST_ARN_PART,
}

# access-denied's least permission and key-policy decision
ROLE_NAME_LAST = (
    "a role ARN is 'arn:aws:iam::<account>:role/<path/>name', so its name is the last '/' piece however it is split from the right"
)
FIRST_PIECE = "the first piece of a split is the same whatever its maxsplit"
POLICY_IS_TEXT = (
    "the key policy reaches the plan as GetKeyPolicy's Policy (the state machine's ResultSelector takes $.Policy), which is JSON text"
)
UNUSED_ACCOUNT = "names_principal does not read its account_id (the account is judged by names_account)"
STAR_GLOB = "a Principal '*' also matches the session ARN as a glob, so it is taken in without the exact '*'"
ARN_COLONS = (
    "the denied resource is an ARN (the message's is checked against the ARN form, CloudTrail's resources are ARNs): "
    "it has at least five ':'"
)
CAUSE_MATCHED = (
    "the state machine reaches the plan with this error only when its Choice matched a pattern against the error's Cause "
    "(a 404 for the bucket policy, KMS's access denied for the key policy), so Cause is there"
)
KEY_ARN_IS_RESOURCE = (
    "a resource policy is read only for a bucket or a key (keyArn is the GetKeyPolicy KeyId), and keyArn is the denied "
    "resource itself (diagnose_identity), so the fallback names the same ARN"
)
PRINCIPAL_GRAMMAR = (
    "a resource policy's Principal is '*' or an object (IAM's policy grammar); a missing one reads as no principal either way"
)
STAR_NOT_ARN = "'*' does not start with 'arn:', so the second test refuses it with the same words"
UNKNOWN_ARCHITECTURE = "an architecture the price list lacks is priced as x86_64, so the default's spelling changes nothing"
EQUIVALENT |= {
    'principal = statement["Principal"]["AWS"].rsplit("/", )[-1]': ROLE_NAME_LAST,
    'principal = statement["Principal"]["AWS"].rsplit("/", 2)[-1]': ROLE_NAME_LAST,
    'principal = statement["Principal"]["AWS"].rsplit("/", 1)[+1]': ROLE_NAME_LAST,
    'role = role_arn.rsplit("/", )[-1]': ROLE_NAME_LAST,
    'role = role_arn.rsplit("/", 2)[-1]': ROLE_NAME_LAST,
    'role = role_arn.rsplit("/", 1)[+1]': ROLE_NAME_LAST,
    'sid = "EtlPlaybooksAccessFix" + re.sub(r"[^A-Za-z0-9]", "", role.title()) + action.split(":", )[1]': ONE_COLON_ACTION,
    'sid = "EtlPlaybooksAccessFix" + re.sub(r"[^A-Za-z0-9]", "", role.title()) + action.rsplit(":", 1)[1]': ONE_COLON_ACTION,
    'sid = "EtlPlaybooksAccessFix" + re.sub(r"[^A-Za-z0-9]", "", role.title()) + action.split(":", 2)[1]': ONE_COLON_ACTION,
    'resource = resource.split("/", )[0] + "/*"': FIRST_PIECE,
    'resource = resource.split("/", 2)[0] + "/*"': FIRST_PIECE,
    "before = json.loads(key_policy) if (isinstance(key_policy, str)) or True else key_policy": POLICY_IS_TEXT,
    "and (names_principal(s, role_arn, session_arn, None) or names_account(s, account_id))": UNUSED_ACCOUNT,
    'if any(names_principal(s, role_arn, session_arn, None) and "Condition" not in s for s in allows):': UNUSED_ACCOUNT,
    'wanted = {"XX*XX", role_arn, session_arn}': STAR_GLOB,
    'owner = resource.split(":")[4] if (resource.count(":") >= 5) or True else ""': ARN_COLONS,
    'owner = resource.split(":")[4] if resource.count(":") >= 5 else "XXXX"': ARN_COLONS,
    "evidence.append(f\"The resource policy could not be read: {findings['resourcePolicyError'].get('Cause', None)[:300]}\")": CAUSE_MATCHED,
    "evidence.append(f\"The resource policy could not be read: {findings['resourcePolicyError'].get('Cause', )[:300]}\")": CAUSE_MATCHED,
    "evidence.append(f\"The resource policy could not be read: {findings['resourcePolicyError'].get('Cause', 'XXXX')[:300]}\")": CAUSE_MATCHED,
    'cause = str(findings["keyPolicyError"].get("Cause", None))[:300]': CAUSE_MATCHED,
    'cause = str(findings["keyPolicyError"].get("Cause", ))[:300]': CAUSE_MATCHED,
    'cause = str(findings["keyPolicyError"].get("Cause", "XXXX"))[:300]': CAUSE_MATCHED,
    **{
        f'where = f"bucket policy of {{denied[\'bucket\']}}" if denied.get("bucket") else f"key policy of {{denied.get({lookup})}}"': (
            KEY_ARN_IS_RESOURCE
        )
        for lookup in (
            "None, resource",
            "'keyArn', None",
            "'keyArn', ",
            "'XXkeyArnXX', resource",
            "'keyarn', resource",
            "'KEYARN', resource",
        )
    },
    'return [str(v) for v in _as_list((principal or {}).get("AWS"))] if (isinstance(principal, dict)) or True else []': PRINCIPAL_GRAMMAR,
    'if resource == "XX*XX" or not resource.startswith("arn:"):': STAR_NOT_ARN,
    'architecture = (configuration.get("Architectures") or ["XXx86_64XX"])[0]': UNKNOWN_ARCHITECTURE,
    'architecture = (configuration.get("Architectures") or ["X86_64"])[0]': UNKNOWN_ARCHITECTURE,
}

# The approval service: its page (approval_api) and its decision path (approvals).
HTML_CASE = "HTML tag names are case-insensitive: browsers (and the form reader) parse the same page"
PLAN_HAS = "plan.json requires summary, evidence and actions: every plan has them, so the default is never used"
LAST_PIECE = "an execution ARN's name is its last ':' piece however the ARN is split from the right"
DIFF_HEADER = "lineterm ends only the diff's ---/+++/@@ lines, which the page skips ([3:])"
UNSHOWN_MALFORMED = "the reason is never shown: every malformed body becomes the same 400 page"
HEADER_CASE = "API Gateway's headers are read case-insensitively (Powertools' CaseInsensitiveDict), as HTTP names are"
HOST_ALWAYS = "a request names its site (HTTP/1.1 requires Host; API Gateway sends domainName): the last fallbacks are never reached"
DYNAMODB_KEYWORD_CASE = "DynamoDB's update-expression keywords are case-insensitive (set = SET)"
NONCE_LENGTH = "the form's nonce is only compared with the ticket's: 24 random bytes or more (None is 32) are as unguessable"
CLOCK_UNREAD = "decide checked expiry at this same instant, so the write lost to a decided request, whose status is read without the clock"
EQUIVALENT |= {
    'def render_view(ticket_id: str, view: approvals.View, base_path: str = "XXXX") -> str:': "its one caller, the page route, always passes base_path",
    "f\"<p>Playbook <b>{html.escape(approval['playbook'])}</b> &middot; execution <code>{html.escape(approval['execution'].rsplit(':', )[-1])}</code></p>\",": LAST_PIECE,
    "f\"<p>Playbook <b>{html.escape(approval['playbook'])}</b> &middot; execution <code>{html.escape(approval['execution'].rsplit(':', 2)[-1])}</code></p>\",": LAST_PIECE,
    "f\"<p>Playbook <b>{html.escape(approval['playbook'])}</b> &middot; execution <code>{html.escape(approval['execution'].rsplit(':', 1)[+1])}</code></p>\",": LAST_PIECE,
    "f\"<p id='summary'>{html.escape(plan.get('summary', None))}</p>\",": PLAN_HAS,
    "f\"<p id='summary'>{html.escape(plan.get('summary', ))}</p>\",": PLAN_HAS,
    "f\"<p id='summary'>{html.escape(plan.get('summary', 'XXXX'))}</p>\",": PLAN_HAS,
    '"<h2>Evidence</h2><ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in plan.get("evidence", None)) + "</ul>",': PLAN_HAS,
    '"<h2>Evidence</h2><ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in plan.get("evidence", )) + "</ul>",': PLAN_HAS,
    '"<h2>Evidence</h2><ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in plan.get("evidence", [])) + "</UL>",': HTML_CASE,
    'actions = plan.get("actions", None)': PLAN_HAS,
    'actions = plan.get("actions", )': PLAN_HAS,
    'table_html = "<table><tr><th></th><th>Action</th><th>Before &rarr; after</th></tr>" + "".join(rows) + "</TABLE>"': HTML_CASE,
    '"<h2>Recommendations (not automated)</h2><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in plan["recommendations"]) + "</UL>"': HTML_CASE,
    'audit = approval.get("audit", None)': "every request is stored with an audit list (request_approval), so the default is never used",
    'audit = approval.get("audit", )': "every request is stored with an audit list (request_approval), so the default is never used",
    '+ "</LI>"': HTML_CASE,
    '+ "</UL>"': HTML_CASE,
    "for line in list(difflib.unified_diff(old, new, n=len(old) + len(new)))[3:]:": DIFF_HEADER,
    'for line in list(difflib.unified_diff(old, new, lineterm="XXXX", n=len(old) + len(new)))[3:]:': DIFF_HEADER,
    "raise MalformedForm(None)": UNSHOWN_MALFORMED,
    'raise MalformedForm("XXrepeated fieldXX")': UNSHOWN_MALFORMED,
    'raise MalformedForm("REPEATED FIELD")': UNSHOWN_MALFORMED,
    'raise MalformedForm("XXnot an objectXX")': UNSHOWN_MALFORMED,
    'raise MalformedForm("NOT AN OBJECT")': UNSHOWN_MALFORMED,
    'body: dict[str, Any] = {key: values[0] for key, values in form.items() if key != "XXactionsXX"}': "`actions` is set from all its values just below, so its first value never stays",
    'body: dict[str, Any] = {key: values[0] for key, values in form.items() if key != "ACTIONS"}': "`actions` is set from all its values just below, so its first value never stays",
    'origin = event.headers.get("ORIGIN")': HEADER_CASE,
    'if origin is None and event.headers.get("REFERER"):': HEADER_CASE,
    'parts = urlsplit(event.headers["REFERER"])': HEADER_CASE,
    'UpdateExpression="set approvals.#who = :record, audit = list_append(audit, :entry)",': DYNAMODB_KEYWORD_CASE,
    'UpdateExpression="set #s = :expired",': DYNAMODB_KEYWORD_CASE,
    'UpdateExpression="set #s = :pending, audit = list_append(audit, :note)" + vote,': DYNAMODB_KEYWORD_CASE,
    "return _lost_race(table, view, None)": CLOCK_UNREAD,
    "return _reject(table, sfn, view, entry, None)": CLOCK_UNREAD + " (_reject reads the clock only to tell a lost race)",
    'plan_actions = [action["id"] for action in view.plan.get("actions", None)]': PLAN_HAS,
    'plan_actions = [action["id"] for action in view.plan.get("actions", )]': PLAN_HAS,
    '"nonce": secrets.token_urlsafe(None),': NONCE_LENGTH,
    '"nonce": secrets.token_urlsafe(25),': NONCE_LENGTH,
    'domain = event.request_context.domain_name or event.headers.get("host", "XXXX") or "localhost"': HOST_ALWAYS,
    'domain = event.request_context.domain_name or event.headers.get("host", "") or "XXlocalhostXX"': HOST_ALWAYS,
    'domain = event.request_context.domain_name or event.headers.get("host", "") or "LOCALHOST"': HOST_ALWAYS,
    'domain = event.request_context.domain_name or event.headers.get("host", None) or "localhost"': HOST_ALWAYS,
    'domain = event.request_context.domain_name or event.headers.get("host", ) or "localhost"': HOST_ALWAYS,
    'domain = event.request_context.domain_name or event.headers.get("HOST", "") or "localhost"': HEADER_CASE,
}


def _launch(guard: bool = False) -> None:
    """Run mutmut's CLI with mutants of functions/ named as the tests import them (see the module's docstring); with
    `guard`, run the quick guard's sample instead (see `guard`)."""
    import mutmut.utils.format_utils as format_utils

    by_path = format_utils.get_mutant_name

    def as_imported(relative_source_path: Path, mutant_method_name: str) -> str:
        return str(by_path(relative_source_path, mutant_method_name)).removeprefix("functions.")

    format_utils.get_mutant_name = as_imported  # before mutmut's modules import it by name
    _only_counted_functions()
    _killers_first()
    # This launcher was imported from the original package: forget it, so that tests import the mutated copy.
    for name in [name for name in sys.modules if name == "playbooks" or name.startswith("playbooks.")]:
        del sys.modules[name]
    if guard:
        _run_guard_sample()
        return
    from mutmut.__main__ import cli

    sys.argv[0] = "mutmut"
    cli()


def _only_counted_functions() -> None:
    """Generate mutants of the counted functions only (half of what mutmut would make of the nine files): the others
    would be generated, compiled into every mutated module and never run."""
    import mutmut.mutation.file_mutation as file_mutation

    create_mutations = file_mutation.create_mutations
    functions = {target.path: set(target.functions) for target in TARGETS if target.functions}

    def counted_only(filename: str, code: str, *args: Any) -> tuple[Any, list[Any], set[str], set[str]]:
        module, mutations, ignored_classes, ignored_functions = create_mutations(filename, code, *args)
        wanted = next((names for path, names in functions.items() if Path(filename).as_posix().endswith(path)), None)
        if wanted is not None:
            mutations = [
                m
                for m in mutations
                if getattr(m.contained_by_top_level_function, "name", None) and m.contained_by_top_level_function.name.value in wanted
            ]
        return module, mutations, ignored_classes, ignored_functions

    file_mutation.create_mutations = counted_only


def _killers_first() -> None:
    """Run first, for each mutant, the tests that killed earlier mutants of its function (the latest first): mutmut
    runs every test that reaches the function, in no set order, and stops at the first failure, so a mutant of a
    branch only a few tests take ran on through most of the others first (a `_send` mutant: 4.7 to 5.3 s on average
    in two runs). The tests that killed one mutant of a function are the likeliest to kill the next; mutmut runs a
    function's mutants one after another."""
    from mutmut.runners.harness import PytestRunner
    from mutmut.utils.file_utils import change_cwd

    run_tests = PytestRunner.run_tests
    killers = (ROOT / "mutants" / ".killers").resolve()

    def killers_first(self: PytestRunner, *, mutant_name: str | None, tests: Any) -> int:
        if mutant_name is None:  # the clean run and the forced failure
            return int(run_tests(self, mutant_name=mutant_name, tests=tests))
        record = killers / mutant_name.partition("__mutmut_")[0]
        known = record.read_text().splitlines() if record.exists() else []
        wanted = list(tests)
        first = [test for test in dict.fromkeys(reversed(known)) if test in wanted]
        ordered = first + [test for test in wanted if test not in first]

        class Recorder:
            def pytest_runtest_logreport(self, report: Any) -> None:
                if report.failed:
                    killers.mkdir(exist_ok=True)
                    with record.open("a") as lines:  # an append of one short line: the two workers never interleave
                        lines.write(report.nodeid + "\n")

        with change_cwd("mutants"):
            return int(self.execute_pytest(self._pytest_args_regular_run(ordered), plugins=[Recorder()]))

    PytestRunner.run_tests = killers_first  # type: ignore[method-assign]


def _run_guard_sample() -> None:
    """In mutmut's process: mutate only the guard's files, pick the sample from what mutmut generated, run it, and
    print each sampled mutant's status and mutated line."""
    import mutmut.__main__ as mutmut_main
    from mutmut.configuration import config
    from mutmut.stats import status_by_exit_code

    settings = config()
    settings.only_mutate = [target.path for target in GUARD_TARGETS]
    settings.pytest_add_cli_args_test_selection = list(GUARD_TESTS)
    Path("mutants").mkdir(exist_ok=True)
    mutmut_main.copy_src_dir()
    mutmut_main.copy_also_copy_files()
    mutmut_main.setup_source_paths()
    mutmut_main.create_mutants(2)
    lines: dict[str, str] = {}
    for target in GUARD_TARGETS:
        lines |= {name: line for name, line in mutated_lines(target).items() if counted(target, name)}
    chosen = sample(lines)
    mutmut_main._run(chosen, 2)
    statuses: dict[str, str] = {}
    for data, name, _ in mutmut_main.collect_source_file_mutation_data(mutant_names=chosen)[0]:
        statuses[name] = status_by_exit_code[data.exit_code_by_key[name]]
    for name in chosen:
        print(f"GUARD {statuses.get(name, 'not run')} {name} {lines[name]}")


def _mutmut(*args: str, capture: bool = True) -> str:
    command = [sys.executable, "-m", "playbooks.mutation", "--mutmut", *args]
    done = subprocess.run(command, cwd=ROOT, check=True, text=True, capture_output=capture)  # noqa: S603 - our own interpreter
    return done.stdout if capture else ""


STATUS = re.compile(r"^\s+(\S+): (.+)$")


def results() -> dict[str, str]:
    """Every mutant's status, by name."""
    return {m.group(1): m.group(2) for line in _mutmut("results", "--all", "true").splitlines() if (m := STATUS.match(line))}


def counted(target: Target, name: str) -> bool:
    if not name.startswith(target.module + ".x"):
        return False
    function = name.removeprefix(target.module + ".x_").split("__mutmut_")[0]
    return not target.functions or function in target.functions


def escape_cell(text: str) -> str:
    return text.replace("|", "\\|")


DETECTED = ("killed", "timeout")


def report(statuses: dict[str, str], seconds: float) -> str:
    lines = [
        "# Mutation testing of the safety-critical code",
        "",
        "Generated by `make mutate` (mutmut over the fast tests named in pyproject.toml's `[tool.mutmut]`); do not edit by hand.",
        f"Last run took {seconds / 60:.1f} minutes. A mutant whose tests time out (an endless loop) counts as killed, as mutmut counts it.",
        "",
        "| module | what it decides | mutants | killed | survived | other | killed % |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    survivors: list[tuple[str, str, str]] = []
    for target in TARGETS:
        mine = {name: status for name, status in statuses.items() if counted(target, name)}
        tally = Counter(mine.values())
        killed, survived = sum(tally[status] for status in DETECTED), tally["survived"]
        other = len(mine) - killed - survived
        share = 100 * killed / len(mine) if mine else 0.0
        lines.append(f"| `{target.path}` | {target.why} | {len(mine)} | {killed} | {survived} | {other} | {share:.1f}% |")
        changed = mutated_lines(target)
        for name in sorted(n for n, s in mine.items() if s not in DETECTED):
            line = changed.get(name, "")
            survivors.append((name, line, EQUIVALENT.get(line, f"NOT JUSTIFIED ({mine[name]})")))
    lines += ["", "## Survivors", ""]
    if not survivors:
        lines.append("None.")
    else:
        lines += ["| mutant | mutated line | why it is equivalent |", "| --- | --- | --- |"]
        lines += [f"| `{name}` | `{escape_cell(line)}` | {why} |" for name, line, why in survivors]
    return "\n".join(lines) + "\n"


def shares(text: str) -> list[float]:
    return [float(share) for share in re.findall(r"\| ([0-9.]+)% \|$", text, re.MULTILINE)]


def main() -> int:
    started = time.monotonic()
    globs = [glob for target in TARGETS for glob in target.globs()]
    _mutmut("run", "--max-children", "2", *globs, capture=False)
    text = report(results(), time.monotonic() - started)
    REPORT.write_text(text)
    print(text)
    return 1 if "NOT JUSTIFIED" in text or any(share < MINIMUM_KILLED for share in shares(text)) else 0


def mutated_lines(target: Target) -> dict[str, str]:
    """Each generated mutant of the target's file and its mutated line, read from mutmut's mutated copy (one parse,
    no `mutmut show` per mutant)."""
    source = (ROOT / "mutants" / target.path).read_text()
    lines = source.splitlines()  # once: ast.get_source_segment would split the whole (megabytes) file per function
    functions = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}

    def text(node: ast.FunctionDef, name: str, plain: str) -> list[str]:
        return "\n".join(lines[node.lineno - 1 : node.end_lineno]).replace(name, plain, 1).splitlines()

    found: dict[str, str] = {}
    for name, node in functions.items():
        original = functions.get(re.sub(r"__mutmut_\d+$", "__mutmut_orig", name))
        if original is None or not re.search(r"__mutmut_\d+$", name):
            continue
        plain = name.split("__mutmut_")[0].removeprefix("x_")  # the def line as the source has it, as `mutmut show` shows it
        before, after = text(original, original.name, plain), text(node, name, plain)
        added = [line[2:].strip() for line in difflib.ndiff(before, after) if line.startswith("+ ")]
        found[f"{target.module}.{name}"] = added[0] if added else ""
    return found


def sample(lines: dict[str, str], size: int = GUARD_SAMPLE) -> list[str]:
    """The guard's fixed sample: the mutants that can be killed (not in EQUIVALENT), ordered by a digest of their
    function and mutated line, so the choice does not move when mutmut renumbers a function's mutants."""

    def key(name: str) -> tuple[str, str]:
        function = name.rsplit(".x_", 1)[-1].split("__mutmut_")[0]
        return hashlib.sha256(f"{function}|{lines[name]}".encode()).hexdigest(), name

    return sorted((name for name, line in lines.items() if line not in EQUIVALENT), key=key)[:size]


GUARD_LINE = re.compile(r"^GUARD (\S+(?: \S+)?) (\S+__mutmut_\d+) (.*)$")


def guard() -> int:
    """The quick guard `make test` runs: a fixed sample of the gate proof's and the change classification's mutants
    must all be detected (seconds, not the minutes of `make mutate`). A mutant whose tests run out of mutmut's CPU-time
    limit (an endless loop) is detected, as `make mutate` counts it; one that survives or was not run fails the guard."""
    started = time.monotonic()
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    output = _mutmut_guard()
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    results = [match.groups() for line in output.splitlines() if (match := GUARD_LINE.match(line))]
    alive = [(status, name, line) for status, name, line in results if status not in DETECTED]
    for status, name, line in alive:
        print(f"mutation guard: {name} {status}: {line}")
    seconds = time.monotonic() - started
    if len(results) != GUARD_SAMPLE or alive:
        print(f"mutation guard: FAILED, {len(results) - len(alive)} of {GUARD_SAMPLE} sampled mutants detected ({seconds:.0f} s)")
        return 1
    print(f"mutation guard: all {GUARD_SAMPLE} sampled mutants of the gate proof and the change classification detected ({seconds:.0f} s)")
    return 0


def _mutmut_guard() -> str:
    command = [sys.executable, "-m", "playbooks.mutation", "--mutmut-guard"]
    done = subprocess.run(command, cwd=ROOT, text=True, capture_output=True)  # noqa: S603 - our own interpreter
    if done.returncode != 0:
        print(done.stdout[-5000:], done.stderr[-5000:], sep="\n")
    return done.stdout


if __name__ == "__main__":
    if sys.argv[1:2] == ["--mutmut"]:
        sys.argv = sys.argv[:1] + sys.argv[2:]
        _launch()
    elif sys.argv[1:2] == ["--mutmut-guard"]:
        sys.argv = sys.argv[:1]
        _launch(guard=True)
    elif sys.argv[1:2] == ["--guard"]:
        sys.exit(guard())
    else:
        sys.exit(main())
