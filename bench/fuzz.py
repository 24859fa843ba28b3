"""``make fuzz``: schemathesis against the OpenAPI schema, every operation, as admin and as viewer.

Against the production web server on PostgreSQL and Redis (bench/live_server.py). Every check
schemathesis has: no server error, responses conform to the schema (status codes, bodies, headers),
valid generated requests are accepted and invalid ones refused. FUZZ_EXAMPLES cases per operation
(default 100). Prints, per role, the cases run and the failures per check; exits 1 on any failure.

bench/fuzz_hooks.py drops one kind of failure, and says how many: a schema-valid request refused
with the 400 its operation's description documents for a rule across fields (``from`` before
``to``, a parameter's bounds of its default's type, ...), which JSON Schema cannot state.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_server import ROOT, live_server, schema_file

LOG_DIR = Path(os.environ.get("FUZZ_LOG_DIR", tempfile.gettempdir()))
HOOKS = Path(__file__).resolve().parent / "fuzz_hooks.py"
# The schemathesis configuration. Half of the generated model refs name a model the server has
# (live_server seeds ids 1 to 20), so the operations on a model's sub-resources are exercised, not
# only their 404. Deletes get models of their own (15-20), so that the other operations keep finding theirs.
CONFIG = """
[dictionaries.models]
values = [{kept}]

[dictionaries.doomed]
values = [{doomed}]

[parameters]
"path.ref" = {{ dictionary = "models", probability = 0.5 }}

[[operations]]
include-name = "DELETE /models/{{ref}}"
parameters = {{ "path.ref" = {{ dictionary = "doomed", probability = 0.5 }} }}

# schemathesis's refusals, and the service's documented refusals of a request too large (413, 414,
# 431: on every operation in the schema): an invalid request refused so is refused.
[checks.negative_data_rejection]
expected-statuses = [
    "400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429", "431", "5xx"
]
""".format(kept=", ".join(f'"{n}"' for n in range(1, 15)), doomed=", ".join(f'"{n}"' for n in range(15, 21)))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
ROLES = os.environ.get("FUZZ_ROLES", "admin,viewer").split(",")


def main() -> int:
    failed = False
    with live_server() as server, tempfile.TemporaryDirectory() as tmp:
        schema = schema_file(server.env, Path(tmp) / "schema.json")
        config = Path(tmp) / "schemathesis.toml"
        config.write_text(CONFIG)
        for role in ROLES:
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "--config-file",
                str(config),
                "run",
                str(schema),
                "--url",
                server.url,
                "--header",
                f"Authorization: Bearer {server.tokens[role]}",
                "--max-examples",
                str(EXAMPLES),
                "--checks",
                "all",
                "--workers",
                "2",
                "--seed",
                "1",
                "--no-color",
                "--suppress-health-check",
                "all",
            ]
            print(f"== schemathesis as {role}, {EXAMPLES} examples per operation", flush=True)
            env = {**server.env, "SCHEMATHESIS_HOOKS": str(HOOKS)}
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
            summary = result.stdout[result.stdout.rfind("SUMMARY") :] if "SUMMARY" in result.stdout else result.stdout
            print(summary[-6000:])
            if result.returncode != 0:
                failed = True
                LOG_DIR.mkdir(parents=True, exist_ok=True)
                log = LOG_DIR / f"fuzz-{role}.log"
                log.write_text(result.stdout)
                print(f"   full output: {log}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
