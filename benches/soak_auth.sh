#!/usr/bin/env bash
# benches/soak_auth.sh ORIGIN DATABASE_URL: the set-up of the authenticated soak
# (COPLAN_BENCH_SETUP of benches/run.sh, used by `SOAK_AUTH=1 benches/soak.sh`). Registers a
# public app allowed `openid fhirUser offline_access user/*.cruds` and a clinician account
# (Practitioner/soak-clinician; the server runs with practitioners_see_all_patients, so the
# clinician reaches every patient the soak creates), signs in as a browser would
# (benches/patient_token.py: PKCE, the sign-in and consent pages), creates the Practitioner, and
# prints coplan-bench's options: the access token, and the refresh token the run refreshes with
# every ${SOAK_REFRESH_EVERY:-60} s. Only loopback is touched; the password is random per run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORIGIN=$1
DB=$2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/coplan
APP=soak-app
USER_NAME=soak-clinician
REDIRECT=http://127.0.0.1/soak/callback
SCOPE="openid fhirUser offline_access user/*.cruds"
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

"$BIN" --database-url "$DB" client add "$APP" --name "Soak app" --redirect-uri "$REDIRECT" \
    --scope "$SCOPE" >&2
printf '%s\n' "$PASSWORD" |
    "$BIN" --database-url "$DB" user add "$USER_NAME" --fhir-user "Practitioner/$USER_NAME" >&2
tokens=$(python3 "$ROOT/benches/patient_token.py" --json "$ORIGIN" "$APP" "$REDIRECT" \
    "$USER_NAME" "$PASSWORD" "$SCOPE")
field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])" <<<"$tokens"; }
access=$(field access_token)
refresh=$(field refresh_token)
curl -sf -o /dev/null -X PUT "$ORIGIN/fhir/Practitioner/$USER_NAME" \
    -H "authorization: Bearer $access" -H 'content-type: application/fhir+json' \
    -d "{\"resourceType\":\"Practitioner\",\"id\":\"$USER_NAME\",\"name\":[{\"family\":\"Soak\",\"given\":[\"Clinician\"]}]}"
# `--option=value`: a token may begin with "-", which clap would take for an option.
echo "--bearer=$access --refresh-token=$refresh --client-id=$APP --refresh-every=${SOAK_REFRESH_EVERY:-60}"
