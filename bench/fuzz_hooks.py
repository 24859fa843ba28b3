"""schemathesis hooks of ``make fuzz`` (bench/fuzz.py loads them through SCHEMATHESIS_HOOKS).

One hook, ``filter_failure``, and it drops one kind of failure only: "schema-valid request
rejected" (ST202) where the request breaks a rule across fields or parameters that JSON Schema
cannot state, that the operation's description in the schema states, and where the service
answered what the description promises: a 400 whose body names only the field of the rule
(bench/fuzz_rules.py decides, from the request). Any other failure, and any other 400, is kept.
The run still sends every such request (server errors and the response checks apply to it), and
schemathesis prints how many failures the hook dropped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_rules import documented_rule_broken


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if not isinstance(failure, RejectedPositiveData):
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    return not documented_rule_broken(case.method, case.operation.path, case, response.status_code, body)
