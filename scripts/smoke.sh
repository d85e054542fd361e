#!/bin/sh
# Smoke walkthrough of a running `bulkhead dev` (or a deployed API with an
# operator token): create a tenant, create an agent, execute twice in one
# conversation, read the transcript, the usage and the bill.
#
#   make run                  # in another terminal
#   sh scripts/smoke.sh
#
# BASE_URL     the API (default http://127.0.0.1:8080)
# ADMIN_TOKEN  the operator token (default: the one `bulkhead dev` keeps in
#              ${BULKHEAD_DATA_DIR:-.bulkhead}/admin-token)
#
# Needs only curl and sed; python3 or jq, when present, pretty-print replies.
# It is not part of `make test`: the Go tests cover the same path in-process.
set -eu

BASE_URL=${BASE_URL:-http://127.0.0.1:8080}
BASE_URL=${BASE_URL%/}
if [ -z "${ADMIN_TOKEN:-}" ]; then
	token_file="${BULKHEAD_DATA_DIR:-.bulkhead}/admin-token"
	[ -r "$token_file" ] || { echo "smoke: set ADMIN_TOKEN (no $token_file to read it from)" >&2; exit 2; }
	ADMIN_TOKEN=$(sed -n '1p' "$token_file")
fi
command -v curl >/dev/null || { echo "smoke: curl is required" >&2; exit 2; }

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT INT TERM

# show prints a reply, pretty when a JSON tool is around.
show() {
	if command -v python3 >/dev/null; then
		python3 -m json.tool "$tmp" 2>/dev/null || cat "$tmp"
	elif command -v jq >/dev/null; then
		jq . "$tmp" 2>/dev/null || cat "$tmp"
	else
		cat "$tmp"; echo
	fi
}

# call EXPECTED_STATUS METHOD PATH TOKEN [BODY]: the reply body lands in
# $tmp. An empty TOKEN sends no Authorization header.
call() {
	want=$1 method=$2 path=$3 token=$4 body=${5:-}
	echo
	echo "==> $method $path"
	set -- -sS -o "$tmp" -w '%{http_code}' -X "$method"
	if [ -n "$token" ]; then
		set -- "$@" -H "Authorization: Bearer $token"
	fi
	if [ -n "$body" ]; then
		set -- "$@" -H 'Content-Type: application/json' --data "$body"
	fi
	status=$(curl "$@" "$BASE_URL$path")
	show
	if [ "$status" != "$want" ]; then
		echo "smoke: $method $path answered $status, want $want" >&2
		exit 1
	fi
}

# field NAME: the string value of "NAME" in the last reply. Good enough for
# these replies: compact JSON, NAME appears once, ids and keys hold no quotes.
field() {
	value=$(sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p' "$tmp" | sed -n '1p')
	if [ -z "$value" ]; then
		echo "smoke: no \"$1\" in the reply" >&2
		exit 1
	fi
	printf '%s' "$value"
}

call 200 GET /health ''

call 201 POST /v1/admin/tenants "$ADMIN_TOKEN" "{\"name\":\"Smoke test $(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"tier\":\"starter\"}"
tenant=$(field tenant_id)
api_key=$(field api_key)

call 201 POST /v1/agents "$api_key" \
	'{"name":"smoke-assistant","system_prompt":"You are a helpful assistant. Keep answers short.","tools":["search_kb"]}'
agent=$(field agent_id)

call 200 POST "/v1/agents/$agent/execute" "$api_key" '{"message":"Hello! What can you do?"}'
conversation=$(field conversation_id)

call 200 POST "/v1/agents/$agent/execute" "$api_key" \
	"{\"message\":\"Tell me more about the first thing.\",\"conversation_id\":\"$conversation\"}"
if [ "$(field conversation_id)" != "$conversation" ]; then
	echo "smoke: the second execution did not continue conversation $conversation" >&2
	exit 1
fi

call 200 GET "/v1/conversations/$conversation" "$api_key"
call 200 GET /v1/usage "$api_key"
if [ "$(field tenant_id)" != "$tenant" ]; then
	echo "smoke: usage is not for tenant $tenant" >&2
	exit 1
fi
call 200 GET /v1/billing/current "$api_key"

echo
echo "smoke: OK (tenant $tenant, agent $agent, conversation $conversation)"
