#!/usr/bin/env bash
# acl.sh CONFORMANCE_BIN DOC: runs the conformance suite on Redis as the
# least-privileged ACL user whose `ACL SETUSER stellar on >PASSWORD ...`
# line DOC (docs/redis.md) gives (issue 16). The harness gives each test's
# redis-server that user (STELLAR_TEST_REDIS_ACL) and logs in as it, so a
# command Stellar runs without the line allowing it fails here.
set -euo pipefail
bin=${1:?usage: acl.sh CONFORMANCE_BIN DOC}
doc=${2:?usage: acl.sh CONFORMANCE_BIN DOC}
rules=$(sed -n 's/^ACL SETUSER stellar on >PASSWORD //p' "$doc")
if [ -z "$rules" ] || [ "$(printf '%s\n' "$rules" | wc -l)" != 1 ]; then
    echo "FAIL: $doc has no single line 'ACL SETUSER stellar on >PASSWORD ...'" >&2
    exit 1
fi
echo "ACL rules from $doc: $rules"
STELLAR_TEST_REDIS_ACL=$rules exec "$bin" --backend redis
