#!/usr/bin/env bash
# pushauth end to end on one machine: a card processor asks for 3-D Secure
# authentication, the cardholder's (virtual) phone gets the push, approves, and the
# result reaches the processor.
#
#   bash mobile-demo/demo.sh [--processor enfuce|adyen|paysafe|treezor|api]
#                            [--answer approve|deny|not_me|ask] [--push fcm|webpush|none]
#
# Builds what is missing (the server and the SDK's cdylib in debug, kotlinc from npm, the
# phone's jar), then starts, in a temporary directory: a mock processor
# (mock_processor.py), a mock FCM (mock_fcm.py) or, with --push webpush, a mock Web Push
# service (mock_webpush.py: a UnifiedPush distributor's server), the issuer's event
# receiver (issuer_receiver.py, Standard Webhooks), the pushauth server on SQLite
# configured for both; creates a cardholder and a card link through the admin API;
# enrolls the virtual phone; plays the processor with a real-shaped, authenticated
# webhook; the phone answers (--auto approve by default; --answer ask puts the prompt on
# your terminal); the demo waits for the result at the processor, prints the timings
# and stops everything it started.
#
# Each processor is one function below (proc_<name>): its [providers.*] section, the
# card link, and the webhook it sends.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

processor=""
answer=approve
use_push=auto
while [ $# -gt 0 ]; do
    case "$1" in
        --processor) processor="${2:?--processor needs a value}"; shift 2 ;;
        --processor=*) processor="${1#*=}"; shift ;;
        --answer) answer="${2:?--answer needs a value}"; shift 2 ;;
        --answer=*) answer="${1#*=}"; shift ;;
        --no-push) use_push=no; shift ;;
        --push) use_push="${2:?--push needs a value}"; shift 2 ;;
        --push=*) use_push="${1#*=}"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "demo: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
# Enfuce by default once its connector is in the server; the generic API otherwise.
if [ -z "$processor" ]; then
    if [ -f server/src/providers/enfuce.rs ]; then processor=enfuce; else processor=api; fi
fi
case "$processor" in enfuce|adyen|paysafe|treezor|api) ;; *) echo "demo: no processor $processor" >&2; exit 2 ;; esac
case "$answer" in approve|deny|not_me) ;; ask)
    { : < /dev/tty; } 2>/dev/null || { echo "demo: --answer ask needs a terminal" >&2; exit 2; } ;;
    *) echo "demo: --answer approve|deny|not_me|ask" >&2; exit 2 ;; esac
if [ "$processor" != api ] && [ ! -f "server/src/providers/$processor.rs" ]; then
    echo "demo: the $processor connector is not in server/src/providers yet; try --processor api" >&2
    exit 2
fi
if [ "$use_push" = auto ]; then
    if [ -f server/src/push/fcm.rs ]; then use_push=fcm; else use_push=no; fi
fi
case "$use_push" in fcm|webpush) ;; none|no) use_push=no ;;
    *) echo "demo: --push fcm|webpush|none" >&2; exit 2 ;; esac

now_ms() { date +%s%3N; }
T0=$(now_ms)
say() { printf '[+%6d ms] %-9s | %s\n' "$(( $(now_ms) - T0 ))" demo "$*"; }
rand() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
uuid() { cat /proc/sys/kernel/random/uuid; }
json_get() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v[k]
print(v)' "$1"; }
# hmac_b64 text|hex|b64 KEY < message: base64 HMAC-SHA256 of stdin's exact bytes.
hmac_b64() {
    python3 -c 'import base64,binascii,hashlib,hmac,sys
fmt,key=sys.argv[1],sys.argv[2]
k={"text":key.encode,"hex":lambda:binascii.unhexlify(key),"b64":lambda:base64.b64decode(key)}[fmt]()
print(base64.b64encode(hmac.new(k,sys.stdin.buffer.read(),hashlib.sha256).digest()).decode())' "$1" "$2"
}
rfc3339() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# ---------------------------------------------------------------- build (idempotent)

command -v curl >/dev/null || { echo "installing curl (apt)" >&2; as_root apt-get install -y -q curl >/dev/null 2>&1 || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q curl >/dev/null; }; }
say "building what is missing: pushauth server, SDK cdylib (debug), kotlinc, the phone"
build_started=$(now_ms)
build_workspace   # the server binary and the SDK cdylib (no-op when fresh)
build_phone
say "build: ready in $(( $(now_ms) - build_started )) ms"

# ---------------------------------------------------------------- processes and cleanup

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    local pid i
    # Newest first: the phone before the mocks it talks to, the server before the mocks.
    for (( i=${#PIDS[@]}-1; i>=0; i-- )); do kill "${PIDS[i]}" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_file FILE SECONDS PID: waits for FILE while PID lives.
wait_file() {
    local i
    for i in $(seq 1 $(( $2 * 20 ))); do
        [ -s "$1" ] && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# A fresh timeline for the demo proper; the phone and the mocks stamp their lines on it.
T0=$(now_ms)
export DEMO_T0_MS=$T0  # for the phone (the server refuses unknown PUSHAUTH_* variables)

# Secrets of this run, shared by the server's configuration and the mock processor.
ADMIN_KEY="demo-admin-$(rand 16)"
API_SECRET=$(rand 32)
ENFUCE_USER=enfuce-webhooks ENFUCE_PASS=$(rand 12) ENFUCE_CB_USER=pushauth ENFUCE_CB_PASS=$(rand 12)
ADYEN_USER=adyen-acs ADYEN_PASS=$(rand 12) ADYEN_HMAC_HEX=$(rand 32 | tr a-f A-F) ADYEN_API_KEY="AQE$(rand 20)"
PAYSAFE_KEY_B64=$(head -c 64 /dev/urandom | base64 -w0) PAYSAFE_TOKEN=$(rand 16) PAYSAFE_OTP=$(( 100000 + RANDOM % 900000 ))
TREEZOR_SECRET=$(rand 16) TREEZOR_CLIENT_ID=$(( 100000 + RANDOM )) TREEZOR_CLIENT_SECRET=$(rand 16)

cat > "$TMP/mock.json" <<EOF
{"t0_ms": $T0, "api_callback_secret": "$API_SECRET",
 "enfuce_callback_user": "$ENFUCE_CB_USER", "enfuce_callback_password": "$ENFUCE_CB_PASS",
 "adyen_api_key": "$ADYEN_API_KEY",
 "paysafe_key_b64": "$PAYSAFE_KEY_B64", "paysafe_api_token": "$PAYSAFE_TOKEN", "paysafe_otp": "$PAYSAFE_OTP",
 "treezor_client_id": "$TREEZOR_CLIENT_ID", "treezor_client_secret": "$TREEZOR_CLIENT_SECRET"}
EOF
touch "$TMP/results.jsonl"
python3 -u mobile-demo/mock_processor.py --config "$TMP/mock.json" --port-file "$TMP/mock.port" --results "$TMP/results.jsonl" &
PIDS+=($!)
wait_file "$TMP/mock.port" 10 "${PIDS[-1]}" || { echo "the mock processor did not start" >&2; exit 1; }
MOCK="http://127.0.0.1:$(cat "$TMP/mock.port")"
say "mock processor listening at $MOCK"

# The issuer's own event receiver (Standard Webhooks; docs/api.md "Issuer events").
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" > "$TMP/events-secret"
touch "$TMP/events.jsonl"
python3 -u mobile-demo/issuer_receiver.py --secret-file "$TMP/events-secret" --port-file "$TMP/issuer.port" \
    --events "$TMP/events.jsonl" --t0-ms "$T0" &
PIDS+=($!)
wait_file "$TMP/issuer.port" 10 "${PIDS[-1]}" || { echo "the issuer receiver did not start" >&2; exit 1; }
ISSUER="http://127.0.0.1:$(cat "$TMP/issuer.port")"
say "issuer event receiver listening at $ISSUER (verifies Standard Webhooks signatures)"

PUSH_TOML=""
if [ "$use_push" = fcm ]; then
    # A fake service account whose token_uri is the mock's; its key is the push tests'
    # test-only RSA key (server/tests/push/fixtures), which protects nothing.
    FCM_KEY=server/tests/push/fixtures/test-only-fcm-service-account-key.pem
    cat > "$TMP/fcm.json" <<EOF
{"t0_ms": $T0, "client_email": "pushauth-demo@pushauth-demo.iam.gserviceaccount.com", "project_id": "pushauth-demo",
 "public_key_pem_file": "$ROOT/server/tests/push/fixtures/test-only-fcm-service-account-key.pub.pem"}
EOF
    python3 -u mobile-demo/mock_fcm.py --config "$TMP/fcm.json" --port-file "$TMP/fcm.port" &
    PIDS+=($!)
    wait_file "$TMP/fcm.port" 10 "${PIDS[-1]}" || { echo "the mock FCM did not start" >&2; exit 1; }
    FCM="http://127.0.0.1:$(cat "$TMP/fcm.port")"
    python3 - "$TMP/service-account.json" "$FCM" "$FCM_KEY" <<'EOF'
import json, sys
out, fcm, key = sys.argv[1:]
json.dump({"type": "service_account", "project_id": "pushauth-demo", "private_key_id": "demo-key-1",
           "private_key": open(key).read(), "client_email": "pushauth-demo@pushauth-demo.iam.gserviceaccount.com",
           "token_uri": fcm + "/token"}, open(out, "w"))
EOF
    PUSH_TOML="[push]
fcm_service_account_file = \"$TMP/service-account.json\"
fcm_base_url = \"$FCM\""
    say "mock FCM listening at $FCM (OAuth token endpoint + HTTP v1 send + the phone's inbox)"
elif [ "$use_push" = webpush ]; then
    # The server's VAPID key, made the way an operator makes it; the phone's subscription
    # names its public half (the application server key) and the mock checks it.
    VAPID_PUB=$("${CARGO_TARGET_DIR:-target}/debug/pushauth" vapid-key generate --out "$TMP/vapid.pem")
    echo "{\"t0_ms\": $T0, \"vapid_public_key\": \"$VAPID_PUB\"}" > "$TMP/webpush.json"
    python3 -u mobile-demo/mock_webpush.py --config "$TMP/webpush.json" --port-file "$TMP/webpush.port" &
    PIDS+=($!)
    wait_file "$TMP/webpush.port" 10 "${PIDS[-1]}" || { echo "the mock Web Push service did not start" >&2; exit 1; }
    WEBPUSH="http://127.0.0.1:$(cat "$TMP/webpush.port")"
    # allow_http / allow_private_addresses: the mock is plain http on 127.0.0.1; a real
    # deployment keeps both false (docs/push.md §9).
    PUSH_TOML="[push.webpush]
vapid_key_file = \"$TMP/vapid.pem\"
subject = \"mailto:push-ops@bank.example\"
allow_http = true
allow_private_addresses = true"
    say "mock Web Push service listening at $WEBPUSH (VAPID key ${VAPID_PUB:0:16}… from pushauth vapid-key generate)"
fi

# ---------------------------------------------------------------- the processors

# proc_<name> config|link|webhook
#   config   prints its [providers.<name>] section (the mock processor is its other end)
#   link     prints "<provider> <card reference>" for POST /v1/admin/cardholders/{id}/links
#   webhook  sends the authentication request the processor would send; prints the answer

CARD_ENFUCE=940102053 CARD_ADYEN=PI3227C223222B5BPCMFXD2XG CARD_PAYSAFE=630880042166 CARD_TREEZOR=8638629 CARD_API=card-4242

# post URL BODY-FILE HEADER…: POSTs the file's exact bytes; prints the status, the time
# and the answer. Sets webhook_at, where the demo's timeline of the challenge starts.
post() {
    local url=$1 file=$2 started status took
    shift 2
    local args=()
    for h in "$@"; do args+=(-H "$h"); done
    started=$(now_ms)
    webhook_at=$started
    status=$(curl -sS -o "$TMP/answer" -w '%{http_code}' -X POST "${args[@]}" --data-binary "@$file" "$url")
    took=$(( $(now_ms) - started ))
    local shown
    if [ ! -s "$TMP/answer" ]; then shown="(no body)"
    elif [ "$(wc -c < "$TMP/answer")" -le 160 ]; then shown=$(cat "$TMP/answer")
    else shown=$(python3 mobile-demo/report.py --answer "$TMP/answer"); fi
    say "  -> HTTP $status in $took ms: $shown"
    [ "${status:0:1}" = 2 ]
}

proc_enfuce() {
    case "$1" in
    config) cat <<EOF
[providers.enfuce]
webhook_user = "$ENFUCE_USER"
webhook_password = "$ENFUCE_PASS"
callback_hosts = ["${MOCK#http://}"]
allow_http_callbacks = true
callback_user = "$ENFUCE_CB_USER"
callback_password = "$ENFUCE_CB_PASS"
EOF
    ;;
    link) echo "enfuce $CARD_ENFUCE" ;;
    webhook)
        # Enfuce ID's third-party authentication request: Basic auth (RFC 7617), the
        # example body's shape, callbackUrl at the mock processor.
        local session
        session=$(uuid)
        printf '%s' "{\"callbackUrl\":\"$MOCK/enfuce/v1/callback/kitbank/$CARD_ENFUCE/$session\",\"transaction\":{\"type\":\"PAYMENT\",\"amount\":{\"amount\":49.90,\"currency\":\"EUR\"},\"cardId\":\"715003456\",\"cardNumber\":\"535522______8707\",\"deviceChannel\":\"BROWSER\",\"timestamp\":\"$(date +%s)\"},\"merchant\":{\"name\":\"Example Shop\",\"description\":\"Order 402956\",\"country\":\"FIN\",\"url\":\"https://shop.example/order/402956\"}}" > "$TMP/webhook"
        say "Enfuce -> POST /v1/authenticate/$CARD_ENFUCE/$session (Basic $ENFUCE_USER:…, EUR 49.90 at Example Shop)"
        post "$PUSHAUTH/v1/authenticate/$CARD_ENFUCE/$session" "$TMP/webhook" \
            "Content-Type: application/json" "Authorization: Basic $(printf '%s:%s' "$ENFUCE_USER" "$ENFUCE_PASS" | base64 -w0)"
        ;;
    esac
}

proc_adyen() {
    case "$1" in
    config) cat <<EOF
[providers.adyen]
webhook_user = "$ADYEN_USER"
webhook_password = "$ADYEN_PASS"
hmac_key = "$ADYEN_HMAC_HEX"
base_url = "$MOCK/adyen"
api_key = "$ADYEN_API_KEY"
EOF
    ;;
    link) echo "adyen $CARD_ADYEN" ;;
    webhook)
        # balancePlatform.authentication.relayed: Basic auth + HmacSignature over the raw
        # body; the sdkInput for Adyen's Authentication SDK in WWW-Authenticate.
        local id now sdk_input signature
        id=$(uuid) now=$(rfc3339 "$(date +%s)")
        sdk_input=$(head -c 96 /dev/urandom | base64 -w0)
        printf '%s' "{\"id\":\"$id\",\"paymentInstrumentId\":\"$CARD_ADYEN\",\"purchase\":{\"date\":\"$now\",\"merchantName\":\"Example Shop\",\"originalAmount\":{\"currency\":\"EUR\",\"value\":4990}},\"type\":\"balancePlatform.authentication.relayed\",\"environment\":\"test\",\"timestamp\":\"$now\"}" > "$TMP/webhook"
        signature=$(hmac_b64 hex "$ADYEN_HMAC_HEX" < "$TMP/webhook")
        say "Adyen -> POST /webhooks/adyen/relayed (Basic + HmacSignature, sdkInput, EUR 49.90 at Example Shop)"
        post "$PUSHAUTH/webhooks/adyen/relayed" "$TMP/webhook" "Content-Type: application/json" \
            "Authorization: Basic $(printf '%s:%s' "$ADYEN_USER" "$ADYEN_PASS" | base64 -w0)" \
            "HmacSignature: $signature" "WWW-Authenticate: SCA realm=\"Challenge\" authparm1=\"$sdk_input\""
        ;;
    esac
}

proc_paysafe() {
    case "$1" in
    config) cat <<EOF
[providers.paysafe]
webhook_key = "$PAYSAFE_KEY_B64"
api_token = "$PAYSAFE_TOKEN"
base_url = "$MOCK/paysafe"
EOF
    ;;
    link) echo "paysafe $CARD_PAYSAFE" ;;
    webhook)
        # An OUTSOURCED SCA event: Signature = base64 HMAC-SHA256 of the raw body, key
        # base64-decoded; the OTP (value) travels only inside the encrypted push.
        local now exp event_id
        now=$(date +%s) exp=$(( $(date +%s) + 900 )) event_id=$(uuid)
        printf '%s' "{\"id\":\"$(uuid)\",\"timestamp\":\"$(rfc3339 "$now")\",\"customer\":{\"id\":\"$CARD_PAYSAFE\",\"externalId\":\"kit-89778981\"},\"authenticationProcess\":{\"eventId\":\"$event_id\",\"walletOperationId\":\"$(uuid)\",\"authenticationMode\":\"OUTSOURCED\",\"flow\":{\"type\":\"TRANSFER\",\"properties\":[{\"key\":\"PAYMENT_ID\",\"value\":\"2561271558\"}]},\"verification\":{\"method\":\"OTP\",\"channel\":\"PUSH_NOTIFICATION\",\"target\":\"jo***@example.com\"},\"value\":\"$PAYSAFE_OTP\",\"creationTime\":\"$(rfc3339 "$now")\",\"expirationTime\":\"$(rfc3339 "$exp")\"}}" > "$TMP/webhook"
        say "Paysafe -> POST /webhooks/paysafe/sca/events (Signature, OUTSOURCED OTP event $event_id; no amount)"
        post "$PUSHAUTH/webhooks/paysafe/sca/events" "$TMP/webhook" "Content-Type: application/json" \
            "Signature: $(hmac_b64 b64 "$PAYSAFE_KEY_B64" < "$TMP/webhook")"
        ;;
    esac
}

proc_treezor() {
    case "$1" in
    config) cat <<EOF
[providers.treezor]
webhook_secret = "$TREEZOR_SECRET"
base_url = "$MOCK/treezor"
client_id = "$TREEZOR_CLIENT_ID"
client_secret = "$TREEZOR_CLIENT_SECRET"
EOF
    ;;
    link) echo "treezor $CARD_TREEZOR" ;;
    webhook)
        # card3DSv2Authentication.create, text/plain: object_payload_signature = base64
        # HMAC-SHA256 of PHP json_encode(object_payload). The payload is written the
        # way json_encode prints it (compact, ASCII, "\/"), so its text is what is signed.
        local id payload
        id=$(uuid)
        payload="{\"card3DSv2Authentications\":[{\"authenticationRequestId\":\"$id\",\"cardId\":\"$CARD_TREEZOR\",\"publicToken\":\"340860528\",\"walletId\":\"5048794\",\"userId\":\"8354222\",\"authenticationMethod\":\"OOB\",\"merchantName\":\"Example Shop\",\"merchantCity\":\"Helsinki\",\"merchantCountry\":\"FIN\",\"mcc\":\"5999\",\"paymentAmount\":\"49.90\",\"paymentCurrency\":\"978\",\"paymentDate\":\"$(date -u '+%Y-%m-%d %H:%M:%S')\",\"merchantUrl\":\"https:\\/\\/shop.example\\/pay\\/628154\"}]}"
        printf '%s' "{\"webhook\":\"card3DSv2Authentication.create\",\"webhook_id\":\"$(uuid)\",\"webhook_created_at\":$(( $(now_ms) * 10 )),\"object\":\"card3DSv2Authentication\",\"object_id\":\"$id\",\"object_payload\":$payload,\"object_payload_signature\":\"$(printf '%s' "$payload" | hmac_b64 text "$TREEZOR_SECRET")\"}" > "$TMP/webhook"
        say "Treezor -> POST /webhooks/treezor (object_payload_signature, card3DSv2Authentication.create, EUR 49.90 at Example Shop)"
        post "$PUSHAUTH/webhooks/treezor" "$TMP/webhook" "Content-Type: text/plain"
        ;;
    esac
}

proc_api() {
    case "$1" in
    config) cat <<EOF
[api]
callback_hosts = ["${MOCK#http://}"]
callback_secret = "$API_SECRET"
allow_http_callbacks = true
EOF
    ;;
    link) echo "api $CARD_API" ;;
    webhook)
        # The generic challenge API, as an issuer's own system calls it; the outcome is
        # POSTed to callback_url with PushAuth-Signature.
        printf '%s' "{\"provider_key\":\"$CARD_API\",\"reference\":\"order-$(rand 4)\",\"kind\":\"payment\",\"amount\":{\"minor\":4990,\"currency\":\"EUR\"},\"payee\":\"Example Shop\",\"ttl_secs\":120,\"callback_url\":\"$MOCK/api/callback\"}" > "$TMP/webhook"
        say "issuer system -> POST /v1/admin/challenges (EUR 49.90 at Example Shop, callback_url at the mock)"
        post "$PUSHAUTH/v1/admin/challenges" "$TMP/webhook" "Content-Type: application/json" "Authorization: Bearer $ADMIN_KEY"
        ;;
    esac
}

# ---------------------------------------------------------------- the server

cat > "$TMP/pushauth.toml" <<EOF
[server]
listen = "127.0.0.1:0"

[storage]
data_dir = "$TMP/data"

[security]
admin_key = "$ADMIN_KEY"

$(proc_"$processor" config)

$PUSH_TOML

[events]
retry_schedule_secs = [1, 5, 30]

[[events.endpoints]]
name = "issuer"
url = "$ISSUER/hooks/pushauth"
secret_files = ["$TMP/events-secret"]
allow_http = true
EOF
RUST_LOG=${RUST_LOG:-warn} "${CARGO_TARGET_DIR:-target}/debug/pushauth" serve --config "$TMP/pushauth.toml" > "$TMP/server.log" 2>&1 &
PIDS+=($!)
server_pid=${PIDS[-1]}
PUSHAUTH=""
for _ in $(seq 1 200); do
    # up to the space after the address: the line may be read while it is written
    PUSHAUTH=$(grep -o 'listening on http://[0-9.:]* ' "$TMP/server.log" | head -n1 | sed 's/listening on //; s/ $//' || true)
    [ -n "$PUSHAUTH" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$PUSHAUTH" ] || { echo "the pushauth server did not start:" >&2; cat "$TMP/server.log" >&2; exit 1; }
say "pushauth server at $PUSHAUTH (SQLite in a temp dir; [providers.$processor] -> mock processor$(case "$use_push" in fcm) echo ", [push] FCM -> mock FCM" ;; webpush) echo ", [push.webpush] -> mock Web Push service" ;; esac))"

admin() { # METHOD PATH [JSON]
    curl -sS -f -X "$1" -H "Authorization: Bearer $ADMIN_KEY" ${3:+-H "Content-Type: application/json" --data-binary "$3"} "$PUSHAUTH$2"
}

# ---------------------------------------------------------------- issuer back office

read -r provider card < <(proc_"$processor" link)
cardholder=$(admin POST /v1/admin/cardholders '{"label":"Demo cardholder","external_ref":"demo-'"$(rand 4)"'"}' | json_get id)
admin POST "/v1/admin/cardholders/$cardholder/links" "{\"provider\":\"$provider\",\"provider_key\":\"$card\",\"label\":\"demo card\"}" >/dev/null
say "admin: cardholder $cardholder, card link $provider:$card"
link=$(admin POST "/v1/admin/cardholders/$cardholder/activation-codes" | json_get deeplink)
say "admin: activation code issued; QR payload $link"

# ---------------------------------------------------------------- the phone

PHONE_DIR="$TMP/phone"
push_args=()
if [ "$use_push" = fcm ]; then
    push_args=(--platform android --push-token "demo-fcm-$(rand 20)" --push-inbox "$FCM")
elif [ "$use_push" = webpush ]; then
    push_args=(--platform webpush --push-inbox "$WEBPUSH")
else
    push_args=(--platform other)
fi
started=$(now_ms)
phone --dir "$PHONE_DIR" enroll "$link" "${push_args[@]}"
enroll_ms=$(( $(now_ms) - started ))
say "phone enrolled ($enroll_ms ms including the JVM start)"

if [ "$answer" = ask ]; then
    # A background job's stdin is /dev/null: give the phone the terminal for its prompt.
    phone --dir "$PHONE_DIR" run --once --timeout 120 --ready-file "$TMP/phone.ready" < /dev/tty &
else
    phone --dir "$PHONE_DIR" run --auto "$answer" --once --timeout 60 --ready-file "$TMP/phone.ready" &
fi
PIDS+=($!)
phone_pid=${PIDS[-1]}
wait_file "$TMP/phone.ready" 30 "$phone_pid" || { echo "the phone did not start" >&2; exit 1; }

# ---------------------------------------------------------------- the processor asks

webhook_at=""
proc_"$processor" webhook || { echo "the webhook was refused; server log:" >&2; tail -20 "$TMP/server.log" >&2; exit 1; }

phone_status=0
wait "$phone_pid" || phone_status=$?
[ "$phone_status" -eq 0 ] || { echo "the phone failed (exit $phone_status); server log:" >&2; tail -20 "$TMP/server.log" >&2; exit 1; }

# Key hygiene afterwards: the phone renews its device key (two-phase, crash-safe: the
# pending key is saved before the request) and is still enrolled.
phone --dir "$PHONE_DIR" rotate device || { echo "the key rotation failed; server log:" >&2; tail -20 "$TMP/server.log" >&2; exit 1; }
phone --dir "$PHONE_DIR" status

# Paysafe takes approvals only; Adyen is finalized on approval only (finalize_on_deny).
expect_result=yes
if [ "$processor" = paysafe ] || [ "$processor" = adyen ]; then
    # What was answered, as the server recorded it (--answer ask: the person's choice).
    [ "$(admin GET "/v1/admin/challenges?cardholder=$cardholder&limit=1" | json_get challenges.0.status)" = approved ] || expect_result=no
fi
if [ "$expect_result" = yes ]; then
    for _ in $(seq 1 600); do
        [ -s "$TMP/results.jsonl" ] && break
        sleep 0.05
    done
    [ -s "$TMP/results.jsonl" ] || { echo "no result reached the mock processor in 30 s; server log:" >&2; tail -20 "$TMP/server.log" >&2; exit 1; }
else
    case "$processor" in
        paysafe) say "Paysafe gets no call for a deny: no 'user refused' attempt in OUTSOURCED mode, the SCA process expires (docs/providers/paysafe.md, assumption 3)" ;;
        adyen) say "Adyen gets no finalize call for a deny: the ACS times out (finalize_on_deny = false; docs/providers/adyen.md, assumption 2)" ;;
    esac
    sleep 1  # long enough for a (wrong) delivery to show up at the mock
fi

# The issuer's systems are told about the decision (a "not me" is its fraud signal).
for _ in $(seq 1 200); do
    grep -q '"challenge.decided"' "$TMP/events.jsonl" && break
    sleep 0.05
done
decided=$(grep '"challenge.decided"' "$TMP/events.jsonl" | tail -n1 || true)
[ -n "$decided" ] || { echo "the issuer received no challenge.decided event in 10 s; server log:" >&2; tail -20 "$TMP/server.log" >&2; exit 1; }
say "issuer event received: $(printf '%s' "$decided" | python3 -c 'import json,sys; e=json.load(sys.stdin); d=e["data"]; print(e["type"], "outcome=" + d["outcome"], "processor=" + d["processor"], "reference=" + d["reference"])')"

# The evidence the issuer keeps (challenge, decision, deliveries, audit) gives the
# server's side of the timeline.
challenge_id=$(admin GET "/v1/admin/challenges?cardholder=$cardholder&limit=1" | json_get challenges.0.id)
admin GET "/v1/admin/challenges/$challenge_id" > "$TMP/evidence.json"
admin GET /v1/admin/audit/verify > "$TMP/audit.json"
python3 mobile-demo/report.py "$TMP/evidence.json" "$TMP/audit.json" "$TMP/results.jsonl" "$T0" "$webhook_at" \
    "$enroll_ms" "$processor" "$answer" "$use_push"
